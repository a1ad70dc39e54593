// The composer of the open conversation: the "Message" input, the "Counter", "Attach
// files" (dialog, drop, paste), the "Emoji" picker, "Send", and the conversation's draft.
// Every figure and verdict is the daemon's: the counter is `count`, what files are kept is
// `attach_check`, the send is `send` (files as data: URIs). Drafts are `draft_get` /
// `draft_set`, saved after a 400 ms pause in typing, on switching and on pagehide.

import { Attachments } from "./attach.js";
import { mountEmoji } from "./emoji.js";

const DRAFT_PAUSE_MS = 400;
const COUNT_PAUSE_MS = 120;
const SVG = "http://www.w3.org/2000/svg";

function icon(paths) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  for (const d of paths) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

const ICONS = {
  attach: ["M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5"],
  emoji: [
    "M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18z",
    "M8 14.5c1 1.4 2.4 2 4 2s3-.6 4-2",
    "M9 9.5v1M15 9.5v1",
  ],
  send: ["M4 12 20 4l-6 16-2.5-6.5z", "M11.5 13.5 20 4"],
  file: ["M6 3h8l4 4v14H6z", "M14 3v4h4"],
};

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("aria-") || key === "role" || key === "type") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function keyOf(conv) {
  if (!conv) return null;
  return conv.id != null ? `c${conv.id}` : `n${conv.number}`;
}

function recipientOf(conv) {
  return conv.id != null ? conv.remote || conv.number : conv.number;
}

/** Mounts the composer in SECTION; returns {setConversation(conv|null), focus()}. */
export function mountComposer(section, { rpc, announce = () => {} }) {
  section.classList.add("cmp");
  const files = el("ul", { class: "cmp-files", "aria-label": "Attached files", hidden: true });
  const alertBox = el("div", { class: "cmp-alert", role: "alert", hidden: true });
  const why = el("p", { class: "cmp-why", id: "cmp-why", hidden: true });
  const picker = el("input", { type: "file", multiple: true, hidden: true, tabIndex: -1 });
  const attachBtn = el("button", { type: "button", class: "cmp-icon", "aria-label": "Attach files", title: "Attach files" }, icon(ICONS.attach));
  const emojiBtn = el("button", {
    type: "button",
    class: "cmp-icon",
    "aria-label": "Emoji",
    title: "Emoji",
    "aria-haspopup": "dialog",
    "aria-expanded": "false",
  }, icon(ICONS.emoji));
  const input = el("textarea", { class: "cmp-input", rows: 1, placeholder: "Type a message", "aria-label": "Message" });
  const counter = el("div", { class: "cmp-counter", role: "status", "aria-label": "Counter" });
  const sendBtn = el("button", { type: "button", class: "cmp-send", title: "Send (Ctrl+Enter)" }, icon(ICONS.send), el("span", { text: "Send" }));
  const pickerHost = el("div", { class: "cmp-pickerhost" });
  section.replaceChildren(
    alertBox,
    files,
    el("div", { class: "cmp-row" },
      el("div", { class: "cmp-tools" }, attachBtn, emojiBtn),
      el("div", { class: "cmp-field" }, input),
      el("div", { class: "cmp-sendbox" }, counter, sendBtn),
    ),
    why,
    picker,
    pickerHost,
  );

  const state = {
    conv: null,
    key: null,
    number: undefined, // the own SMS number; null: none assigned
    maxSegments: 4,
    sending: false,
    blocked: null, // why sending is impossible, or null
  };
  /** Per conversation, while the page lives: its attachments and unsaved text. */
  const perConv = new Map();
  let draftTimer = 0;
  let countTimer = 0;
  let countSeq = 0;
  let savedText = "";

  function slot(key) {
    if (!perConv.has(key)) perConv.set(key, { files: new Attachments(rpc), text: null });
    return perConv.get(key);
  }
  const current = () => (state.key ? slot(state.key) : null);

  // ------------------------------------------------------------------ alert and counter

  function say(text) {
    alertBox.textContent = text || "";
    alertBox.hidden = !text;
  }

  function scheduleCount() {
    clearTimeout(countTimer);
    countTimer = setTimeout(updateCounter, COUNT_PAUSE_MS);
  }

  async function updateCounter() {
    const seq = ++countSeq;
    const att = current() ? current().files : null;
    const params = { text: input.value };
    if (att && att.count) Object.assign(params, { files: att.count, bytes: att.bytes });
    let count;
    try {
      count = await rpc.call("count", params);
    } catch (err) {
      if (seq === countSeq) counter.textContent = err.message;
      return;
    }
    if (seq !== countSeq) return;
    let line;
    if (att && att.count) line = `${Math.floor(count.bytes_left / 1024)} KB left`;
    else if (count.kind === "mms") line = `${count.chars_left} characters left · MMS`;
    else line = `${count.remaining} characters left · ${count.segments}/${state.maxSegments} SMS`;
    counter.textContent = line;
    counter.classList.toggle("cmp-over", !count.fits);
    counter.title = count.fits ? "" : count.reason || "";
  }

  // ------------------------------------------------------------------ files

  function renderFiles() {
    const att = current() ? current().files : null;
    files.replaceChildren();
    const items = att ? att.items : [];
    files.hidden = items.length === 0;
    items.forEach((item, index) => {
      const thumb = item.url
        ? el("img", { class: "cmp-thumb", src: item.url, alt: "" })
        : el("span", { class: "cmp-thumb cmp-doc" }, icon(ICONS.file), el("span", { class: "cmp-ext", text: (item.name.split(".").pop() || "").slice(0, 4) }));
      const remove = el("button", { type: "button", class: "cmp-remove", "aria-label": `Remove ${item.name}`, title: `Remove ${item.name}` });
      remove.addEventListener("click", async () => {
        await att.remove(index);
        say("");
        renderFiles();
        updateCounter();
        input.focus();
      });
      files.append(el("li", { class: "cmp-file", title: item.name }, thumb, el("span", { class: "cmp-name", text: item.name }), remove));
    });
  }

  async function addFiles(list) {
    const arr = Array.from(list || []);
    if (!arr.length || !state.key) return;
    if (state.blocked) {
      say(state.blocked);
      return;
    }
    const att = current().files;
    let message;
    try {
      message = await att.add(arr);
    } catch (err) {
      message = err.message;
    }
    renderFiles();
    say(message);
    updateCounter();
  }

  attachBtn.addEventListener("click", () => picker.click());
  picker.addEventListener("change", () => {
    addFiles(picker.files);
    picker.value = "";
  });

  // Drop onto the open conversation (its messages and the composer).
  const dropZone = section.parentElement || section;
  const hasFiles = (ev) => ev.dataTransfer && Array.from(ev.dataTransfer.types || []).includes("Files");
  dropZone.addEventListener("dragover", (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = "copy";
    section.classList.add("cmp-dropping");
  });
  dropZone.addEventListener("dragleave", (ev) => {
    if (!dropZone.contains(ev.relatedTarget)) section.classList.remove("cmp-dropping");
  });
  dropZone.addEventListener("drop", (ev) => {
    section.classList.remove("cmp-dropping");
    if (!ev.dataTransfer || !ev.dataTransfer.files.length) return;
    ev.preventDefault();
    addFiles(ev.dataTransfer.files);
  });
  // Paste: files from the clipboard are attached; text pastes as usual.
  input.addEventListener("paste", (ev) => {
    const pasted = ev.clipboardData ? Array.from(ev.clipboardData.files || []) : [];
    if (!pasted.length) return;
    ev.preventDefault();
    addFiles(pasted);
  });

  // ------------------------------------------------------------------ emoji

  const emoji = mountEmoji(emojiBtn, pickerHost, {
    rpc,
    announce,
    insert(chars) {
      const start = input.selectionStart ?? input.value.length;
      const end = input.selectionEnd ?? start;
      input.setRangeText(chars, start, end, "end");
      input.dispatchEvent(new Event("input", { bubbles: true }));
    },
  });

  // ------------------------------------------------------------------ drafts

  function saveDraft() {
    clearTimeout(draftTimer);
    const conv = state.conv;
    if (!conv) return;
    const text = input.value;
    const s = current();
    if (s) s.text = text;
    if (conv.id == null || text === savedText) return;
    savedText = text;
    rpc.call("draft_set", { conversation: conv.id, text }).catch((err) => console.error(err));
  }

  async function loadDraft(conv, key) {
    const s = slot(key);
    if (s.text !== null || conv.id == null) {
      input.value = s.text || "";
      savedText = input.value;
      return;
    }
    input.value = "";
    savedText = "";
    try {
      const draft = await rpc.call("draft_get", { conversation: conv.id });
      if (state.key === key && input.value === "") {
        input.value = draft.text;
        savedText = draft.text;
        s.text = draft.text;
        fit();
        updateCounter();
      }
    } catch (err) {
      console.error(err);
    }
  }

  input.addEventListener("input", () => {
    fit();
    scheduleCount();
    clearTimeout(draftTimer);
    draftTimer = setTimeout(saveDraft, DRAFT_PAUSE_MS);
  });
  window.addEventListener("pagehide", saveDraft);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") saveDraft();
  });

  function fit() {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
  }

  // ------------------------------------------------------------------ sending

  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      send();
    }
  });
  sendBtn.addEventListener("click", () => send());

  async function send() {
    const conv = state.conv;
    if (!conv || state.sending) return;
    if (state.blocked) {
      say(state.blocked);
      return;
    }
    const s = current();
    const text = input.value.trim();
    if (!text && !s.files.count) {
      say("Type a message or attach a file first.");
      input.focus();
      return;
    }
    state.sending = true;
    sendBtn.disabled = true;
    section.setAttribute("aria-busy", "true");
    try {
      const params = { to: recipientOf(conv), text, client_id: crypto.randomUUID() };
      if (s.files.count) params.files = await s.files.dataUris();
      const result = await rpc.call("send", params);
      say(result.dropped && result.dropped.length ? result.notice || "Some files were left out." : "");
      if (result.notice && !(result.dropped && result.dropped.length)) announce(result.notice);
      input.value = "";
      s.text = "";
      s.files.clear();
      renderFiles();
      fit();
      if (conv.id != null) {
        savedText = "";
        rpc.call("draft_set", { conversation: conv.id, text: "" }).catch((err) => console.error(err));
      } else {
        perConv.delete(keyOf(conv));
        section.dispatchEvent(
          new CustomEvent("glosms:sent", {
            detail: { conversation_id: result.message.conversation_id, message: result.message },
            bubbles: true,
          }),
        );
      }
      announce("Message sent");
    } catch (err) {
      say(err.message);
    } finally {
      state.sending = false;
      sendBtn.disabled = Boolean(state.blocked);
      section.removeAttribute("aria-busy");
      updateCounter();
      input.focus();
    }
  }

  // ------------------------------------------------------------------ number and state

  async function checkNumber() {
    let status;
    try {
      status = await rpc.call("status");
    } catch (err) {
      console.error(err);
      return;
    }
    state.number = status.number;
    state.maxSegments = (status.settings && status.settings.sms_max_segments) || 4;
    let blocked = null;
    if (!status.number) {
      const info = await rpc.call("number").catch(() => ({ message: null }));
      blocked = info.message || "No SMS number assigned: sending and receiving are impossible.";
      if (!blocked.startsWith("No SMS number assigned")) blocked = `No SMS number assigned: ${blocked}`;
    } else if (status.sms_enabled === false) {
      blocked = 'SMS messaging on this desktop is switched off ("Enable the SMS messaging on Desktop").';
    }
    setBlocked(blocked);
  }

  function setBlocked(reason) {
    state.blocked = reason;
    input.disabled = Boolean(reason);
    attachBtn.disabled = Boolean(reason);
    emojiBtn.disabled = Boolean(reason);
    sendBtn.disabled = Boolean(reason);
    input.placeholder = reason ? "No SMS number assigned" : "Type a message";
    if (reason && !reason.startsWith("No SMS number")) input.placeholder = "Sending is switched off";
    why.textContent = reason || "";
    why.hidden = !reason;
    if (reason) input.setAttribute("aria-describedby", "cmp-why");
    else input.removeAttribute("aria-describedby");
  }

  rpc.on("event", (ev) => {
    if (ev && (ev.kind === "prefs" || ev.kind === "reset")) checkNumber();
  });

  // ------------------------------------------------------------------ the interface

  function setConversation(conv) {
    const key = keyOf(conv);
    if (key === state.key && conv) {
      state.conv = conv;
      return;
    }
    if (state.conv) saveDraft();
    emoji.close(false);
    say("");
    state.conv = conv;
    state.key = key;
    section.hidden = !conv;
    if (!conv) return;
    renderFiles();
    loadDraft(conv, key).then(() => {
      fit();
      updateCounter();
    });
    checkNumber();
  }

  checkNumber();
  updateCounter();
  return {
    setConversation,
    focus: () => input.focus(),
  };
}
