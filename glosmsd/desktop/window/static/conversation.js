// The open conversation: the blue bar (name, number, Call, Delete conversation, who shares
// the number, a menu with "Mark as unread") and the messages (a log named "Messages"):
// bubbles grouped by day with time and state, sharer headers, attachments, Resend, and a
// context menu (Copy, Delete). Paged: the newest page at once, older pages on scrolling
// up, and never more than MAX_DOM messages in the DOM (the rest stay in memory).
import { avatar, clock, dayKey, dayLabel, h, icon, richText, size } from "./dom.js";
import { closeMenu, isMenuOpen, showMenu } from "./menu.js";
import { confirmDelete, showImage, showSharers } from "./dialogs.js";

const PAGE = 50;
const MAX_DOM = 240;
const EDGE = 240; // px from the top or bottom that loads the next page

export class ConversationView {
  constructor(app) {
    this.app = app;
    this.bar = document.getElementById("bar");
    this.log = document.getElementById("messages");
    this.conv = null;
    this.loaded = []; // oldest first
    this.start = 0; // the DOM shows loaded[start, end)
    this.end = 0;
    this.hasOlder = false;
    this.loadingOlder = false;
    this.seq = 0;
    this.els = new Map(); // message id -> element
    this.downloads = new Set();
    /** Ids of the failed messages whose resend is on its way (one click sends once). */
    this.resending = new Set();
    this.jump = h(
      "button",
      { type: "button", class: "jump", hidden: true, onclick: () => this.showNewest(true) },
      "Jump to newest",
    );
    this.log.after(this.jump);
    this.log.addEventListener("scroll", () => this._scrolled(), { passive: true });
    // The end stays in view when the log's box changes under it: laid out only after the
    // first render (scrollTop on a box not yet laid out does nothing), the composer
    // growing, the window resized. Fonts arriving late change the bubbles' heights.
    new ResizeObserver(() => this._keepBottom()).observe(this.log);
    document.fonts.ready.then(() => this._keepBottom());
    // Until the end has been in view once, a scroll event is layout settling, not the
    // user: it must not page older messages in or let go of the end (see _scrolled).
    this.settling = false;
    for (const type of ["wheel", "pointerdown", "keydown", "touchstart"]) {
      this.log.addEventListener(type, () => { this.settling = false; }, { passive: true });
    }
    this.log.addEventListener("contextmenu", (ev) => this._contextMenu(ev));
    this.log.addEventListener("keydown", (ev) => this._key(ev));
    this.log.addEventListener("focus", (ev) => {
      if (ev.target === this.log) {
        const last = this.log.querySelector(".msg:last-of-type") || [...this.log.querySelectorAll(".msg")].pop();
        if (last && this.app.keyboard) last.focus();
      }
    });
  }

  get id() {
    return this.conv ? this.conv.id : null;
  }

  // ------------------------------------------------------------------ opening

  /** Shows conversation `id` (a number); resolves with its conversation object. */
  async open(id) {
    const mine = ++this.seq;
    const known = this.app.convs.get(id);
    this._reset(known || { id, title: "", remote: "" });
    const res = await this.app.rpc.call("messages", { conversation: id, limit: PAGE });
    if (mine !== this.seq) return null;
    this.conv = res.conversation;
    this.loaded = res.messages.slice().reverse();
    this.hasOlder = res.messages.length === PAGE;
    this.start = Math.max(0, this.loaded.length - PAGE);
    this.end = this.loaded.length;
    this.renderBar();
    this._render({ bottom: true });
    return this.conv;
  }

  /** A conversation that does not exist yet (#/new/NUMBER): a draft until the first send. */
  openNew(number, name = null) {
    ++this.seq;
    this._reset({ id: null, number: this.app.ownNumber(), remote: number, name, title: name || number });
    this.renderBar();
    this.log.replaceChildren(h("p", { class: "log-empty" }, `No messages with ${name || number} yet. Write the first one below.`));
  }

  close() {
    ++this.seq;
    this.conv = null;
    this.loaded = [];
    this.els.clear();
    this.log.replaceChildren();
    this.bar.replaceChildren();
    this.jump.hidden = true;
  }

  _reset(conv) {
    this.conv = conv;
    this.loaded = [];
    this.start = this.end = 0;
    this.hasOlder = false;
    this.els.clear();
    this.log.replaceChildren();
    this.jump.hidden = true;
    this.renderBar();
  }

  // ------------------------------------------------------------------ the blue bar

  renderBar() {
    const conv = this.conv;
    if (!conv) return;
    const app = this.app;
    const title = conv.title || conv.remote || "";
    const showNumber = conv.remote && conv.remote !== title;
    const btn = (name, label, onclick, { text = label } = {}) =>
      h(
        "button",
        { type: "button", class: "barbtn", "aria-label": label, title: label, onclick },
        icon(name),
        h("span", { class: "btn-label" }, text),
      );
    const actions = h("div", { class: "bar-actions" });
    if (app.number && app.number.shared && app.number.shared_with.length) {
      actions.append(
        btn("people", "Multiple users share this number", () => showSharers(app.number.shared_with), {
          text: "Shared",
        }),
      );
    }
    actions.append(btn("phone", "Call", () => this._call()));
    if (conv.id !== null) {
      actions.append(btn("trash", "Delete conversation", () => this._deleteConversation(), { text: "Delete" }));
      const more = h(
        "button",
        {
          type: "button",
          class: "barbtn icon-only",
          "aria-label": "Conversation menu",
          title: "Conversation menu",
          "aria-haspopup": "menu",
          "aria-expanded": "false",
        },
        icon("more"),
      );
      more.addEventListener("click", () => {
        if (isMenuOpen()) {
          closeMenu();
          return;
        }
        showMenu({
          label: "Conversation",
          opener: more,
          at: { anchor: more, align: "right" },
          items: [{ label: "Mark as unread", action: () => this._markUnread() }],
        });
      });
      actions.append(more);
    }
    this.bar.replaceChildren(
      h(
        "button",
        { type: "button", class: "barbtn icon-only back", "aria-label": "Back to conversations", onclick: () => app.go("#/") },
        icon("back"),
      ),
      avatar(title, conv.remote),
      h(
        "div",
        { class: "who" },
        h("h2", { class: "who-name", id: "conv-title" }, title),
        showNumber ? h("span", { class: "who-number" }, conv.remote) : null,
      ),
      actions,
    );
  }

  async _call() {
    const conv = this.conv;
    try {
      const res = await this.app.rpc.call("call", { conversation: conv.id !== null ? conv.id : conv.remote });
      this.app.announce(`Calling ${res.number}`);
    } catch (err) {
      this.app.fail(err);
    }
  }

  async _deleteConversation() {
    const conv = this.conv;
    if (!(await confirmDelete(conv))) return;
    try {
      await this.app.rpc.call("delete_conversation", { conversation: conv.id });
      this.app.removeConversation(conv.id);
      this.app.announce(`Conversation with ${conv.title} deleted`);
      this.app.go("#/", { focus: true });
    } catch (err) {
      this.app.fail(err);
    }
  }

  async _markUnread() {
    const conv = this.conv;
    try {
      await this.app.rpc.call("mark_unread", { conversation: conv.id });
      this.app.announce(`${conv.title} marked as unread`);
      // Staying here would read it again at once: back to the list, as mail apps do.
      this.app.go("#/", { focus: true });
    } catch (err) {
      this.app.fail(err);
    }
  }

  // ------------------------------------------------------------------ rendering

  /** Rebuilds the DOM window loaded[start, end); keeps the anchor message in place. */
  _render({ bottom = false } = {}) {
    const anchor = bottom ? null : this._anchor();
    const frag = document.createDocumentFragment();
    let prev = null;
    if (this.start === 0 && !this.hasOlder && this.loaded.length) {
      frag.append(h("p", { class: "log-start" }, "The conversation starts here."));
    }
    for (let i = this.start; i < this.end; i++) {
      const m = this.loaded[i];
      this._appendOne(frag, m, prev);
      prev = m;
    }
    if (!this.loaded.length) frag.append(h("p", { class: "log-empty" }, "No messages yet."));
    this.log.replaceChildren(frag);
    this.jump.hidden = this.end >= this.loaded.length;
    if (bottom) {
      this.log.scrollTop = this.log.scrollHeight;
      this.atBottom = true;
      this.settling = true;
    }
    else if (anchor) {
      const el = this.els.get(anchor.id);
      if (el) this.log.scrollTop = el.offsetTop - anchor.offset;
    }
  }

  _appendOne(parent, m, prev) {
    if (!prev || dayKey(prev.at) !== dayKey(m.at)) {
      parent.append(h("div", { class: "day", role: "separator", "aria-label": dayLabel(m.at) }, h("span", {}, dayLabel(m.at))));
      prev = null;
    }
    let el = this.els.get(m.id);
    const group = sameGroup(prev, m);
    if (!el || el.dataset.group !== String(group)) {
      el = this._message(m, group);
      this.els.set(m.id, el);
    }
    parent.append(el);
  }

  _anchor() {
    const top = this.log.scrollTop;
    for (const el of this.log.querySelectorAll(".msg")) {
      if (el.offsetTop + el.offsetHeight > top) return { id: Number(el.dataset.id), offset: el.offsetTop - top };
    }
    return null;
  }

  _message(m, group) {
    const out = m.direction === "out";
    const sharer = m.sender;
    const who = out ? (sharer ? sharer.name : "You") : this.conv.title || m.remote;
    const el = h("div", {
      class: `msg ${out ? "out" : "in"}${sharer ? " by-sharer" : ""}${m.state === "failed" ? " failed" : ""}${group ? " grouped" : ""}`,
      role: "article",
      tabindex: "-1",
      "aria-roledescription": "message",
      dataset: { id: String(m.id), group: String(group) },
    });
    if (sharer) {
      el.append(h("div", { class: "sharer" }, avatar(sharer.name, sharer.ext), h("span", { class: "sharer-name" }, sharer.name)));
    }
    const bubble = h("div", { class: "bubble" }, sharer ? null : h("span", { class: "sr-only" }, `${who}: `));
    if (m.text) {
      bubble.append(h("div", { class: "text" }, richText(m.text, { onLink: (url) => this.app.openLink(url) })));
    }
    if (m.files && m.files.length) bubble.append(this._files(m));
    el.append(bubble, this._meta(m, out));
    return el;
  }

  _meta(m, out) {
    const meta = h("div", { class: "meta" }, h("time", { datetime: new Date(m.at * 1000).toISOString() }, clock(m.at)));
    if (out) {
      if (m.state === "sending") meta.append(h("span", { class: "state sending" }, "Sending…"));
      else if (m.state === "sent") meta.append(h("span", { class: "state sent" }, "Sent"));
      else {
        meta.append(
          h("span", { class: "state failed", title: m.reason || "" }, icon("alert", "icon small"), m.reason ? `Failed: ${m.reason}` : "Failed"),
        );
        // Sent again already (here, in another window, from the command line): the new
        // copy is the one that goes; this one says so and offers no second Resend.
        if (m.resent_as != null && m.resent_as !== m.id) {
          meta.append(h("span", { class: "state resent", title: "Sent again as a new message" }, "Resent"));
        } else if (!m.sender) {
          // Only the user's own messages can be sent again from here, not another sharer's.
          const busy = this.resending.has(m.id);
          meta.append(h("button", { type: "button", class: "resend", disabled: busy, onclick: (ev) => this._resend(m, ev.currentTarget) }, "Resend"));
        }
      }
    }
    return meta;
  }

  _files(m) {
    const box = h("div", { class: "files" });
    m.files.forEach((f, i) => {
      const image = f.mime && f.mime.startsWith("image/");
      const src = f.sha256 ? `/files/${f.sha256}` : null;
      if (f.state === "done" && src && image) {
        box.append(
          h(
            "button",
            { type: "button", class: "thumb", "aria-label": `Show ${f.name} large`, onclick: () => showImage(src, f.name) },
            h("img", { src, alt: f.name, onload: () => this._keepBottom() }),
          ),
        );
        return;
      }
      const chip = h("span", { class: "chip" }, icon("file", "icon small"), h("span", { class: "chip-name" }, f.name), h("span", { class: "chip-size" }, size(f.size)));
      if (f.state === "done" && src) {
        box.append(h("a", { class: "chip-link", href: src, download: f.name, "aria-label": `${f.name}, ${size(f.size)}` }, chip));
        return;
      }
      const row = h("div", { class: "chip-row" }, chip);
      if (m.direction === "out" && !f.sha256) {
        row.append(h("span", { class: "chip-note" }, m.state === "failed" ? "Not sent" : "Uploading…"));
      } else if (f.state === "downloading" || this.downloads.has(`${m.id}/${i}`)) {
        row.append(h("span", { class: "chip-note", role: "status" }, "Downloading…"));
      } else if (f.state === "failed") {
        row.append(
          h("span", { class: "chip-note error" }, "Download failed"),
          h("button", { type: "button", class: "download", "aria-label": `Retry download of ${f.name}`, onclick: () => this._download(m, i) }, icon("download", "icon small"), "Retry"),
        );
      } else {
        row.append(
          h("button", { type: "button", class: "download", "aria-label": `Download ${f.name}`, onclick: () => this._download(m, i) }, icon("download", "icon small"), "Download"),
        );
      }
      box.append(row);
    });
    this._autoDownload(m);
    return box;
  }

  /** Files the daemon fetches by itself (under the MMS limit): wait for them here too, so
   * the thumbnail shows when they are in (there is no event for a finished download). */
  _autoDownload(m) {
    if (!this.app.autoDownload) return;
    const limit = this.app.mmsMaxBytes();
    m.files.forEach((f, i) => {
      if (f.sha256 && (f.state === "none" || f.state === "downloading") && (f.size || 0) <= limit && m.direction === "in") {
        if (!this.downloads.has(`${m.id}/${i}`)) this._download(m, i, { quiet: true, rerender: false });
      }
    });
  }

  async _download(m, i, { quiet = false, rerender = true } = {}) {
    const key = `${m.id}/${i}`;
    if (this.downloads.has(key)) return;
    this.downloads.add(key);
    if (rerender) this._refresh(m);
    try {
      const res = await this.app.rpc.call("download", { id: m.id, file: i });
      const got = res.files[0];
      if (got) m.files[i] = { ...m.files[i], state: got.state, path: got.path };
      if (!quiet) this.app.announce(`${m.files[i].name} downloaded`);
    } catch (err) {
      m.files[i] = { ...m.files[i], state: "failed" };
      if (!quiet) this.app.fail(err);
    } finally {
      this.downloads.delete(key);
      this._refresh(m);
    }
  }

  async _resend(m, button) {
    if (this.resending.has(m.id)) return;
    this.resending.add(m.id);
    if (button) button.disabled = true; // a second click before the answer sends nothing
    try {
      const res = await this.app.rpc.call("resend", { id: m.id });
      // The answer is the message that goes; another id means a new copy replaced this one.
      if (res.message && res.message.id !== m.id) m.resent_as = res.message.id;
      this.app.announce("Sending again");
    } catch (err) {
      this.app.fail(err);
    } finally {
      this.resending.delete(m.id);
      this._refresh(m);
    }
  }

  /** Re-renders one message in place (state, files). */
  _refresh(m) {
    const old = this.els.get(m.id);
    if (!old) return;
    const fresh = this._message(m, old.dataset.group === "true");
    this.els.set(m.id, fresh);
    if (old.isConnected) {
      const focused = old.contains(document.activeElement);
      old.replaceWith(fresh);
      if (focused) fresh.focus();
    }
  }

  // ------------------------------------------------------------------ paging

  /** A thumbnail came in: if the end was in view, keep it there. */
  _keepBottom() {
    if (this.atBottom && this.end >= this.loaded.length) this.log.scrollTop = this.log.scrollHeight;
  }

  _scrolled() {
    const log = this.log;
    if (this.settling) {
      // A box laid out after its first render scrolls by itself (scrollTop near 0 there
      // once paged older messages in, and the newest opened out of view on a busy
      // machine): keep the end until it has been reached or the user scrolls.
      if (log.scrollHeight - log.scrollTop - log.clientHeight >= 40) {
        this.atBottom = true;
        this._keepBottom();
        return;
      }
      this.settling = false;
    }
    this.atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    if (log.scrollTop < EDGE) this._older();
    else if (log.scrollHeight - log.scrollTop - log.clientHeight < EDGE && this.end < this.loaded.length) this._newer();
    if (this.end >= this.loaded.length && log.scrollHeight - log.scrollTop - log.clientHeight < 40) {
      this.jump.hidden = true;
    }
  }

  async _older() {
    if (this.start > 0) {
      this.start = Math.max(0, this.start - PAGE);
      this.end = Math.min(this.end, this.start + MAX_DOM);
      this._render();
      return;
    }
    if (!this.hasOlder || this.loadingOlder || !this.loaded.length || this.conv.id === null) return;
    this.loadingOlder = true;
    const mine = this.seq;
    try {
      const res = await this.app.rpc.call("messages", { conversation: this.conv.id, before: this.loaded[0].id, limit: PAGE });
      if (mine !== this.seq) return;
      const older = res.messages.slice().reverse();
      this.hasOlder = res.messages.length === PAGE;
      this.loaded = older.concat(this.loaded);
      this.end = Math.min(this.end + older.length, MAX_DOM);
      this.start = 0;
      this._render();
    } catch (err) {
      this.app.fail(err);
    } finally {
      this.loadingOlder = false;
    }
  }

  _newer() {
    this.end = Math.min(this.loaded.length, this.end + PAGE);
    this.start = Math.max(this.start, this.end - MAX_DOM);
    this._render();
  }

  showNewest(focus = false) {
    this.end = this.loaded.length;
    this.start = Math.max(0, this.end - PAGE);
    this._render({ bottom: true });
    if (focus) this.log.focus();
  }

  // ------------------------------------------------------------------ live

  /** A message of this conversation arrived or was sent (from any device). */
  addMessage(m) {
    const at = this.loaded.findIndex((x) => x.id === m.id);
    if (at >= 0) {
      this.loaded[at] = m;
      this._refresh(m);
      return;
    }
    const wasNewest = this.end >= this.loaded.length;
    const log = this.log;
    const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    const prev = this.loaded[this.loaded.length - 1];
    this.loaded.push(m);
    if (!wasNewest) {
      this.jump.hidden = false;
      return;
    }
    const empty = log.querySelector(".log-empty");
    if (empty) empty.remove();
    this._appendOne(log, m, prev);
    this.end = this.loaded.length;
    if (this.end - this.start > MAX_DOM) {
      this.start = this.end - MAX_DOM;
      this._render({ bottom: nearBottom || m.direction === "out" });
      return;
    }
    if (nearBottom || (m.direction === "out" && !m.sender)) {
      log.scrollTop = log.scrollHeight;
      this.atBottom = true;
    }
    else this.jump.hidden = false;
  }

  setState({ id, state, reason, resent_as }) {
    const m = this.loaded.find((x) => x.id === id);
    if (!m) return;
    m.state = state;
    m.reason = reason;
    if (resent_as !== undefined) m.resent_as = resent_as;
    else if (state === "failed" && m.resent_as === m.id) m.resent_as = null; // it can go again
    this._refresh(m);
  }

  removeMessages(ids) {
    const gone = new Set(ids);
    const before = this.loaded.length;
    const keptBefore = this.loaded.slice(0, this.start).filter((m) => !gone.has(m.id)).length;
    const keptShown = this.loaded.slice(this.start, this.end).filter((m) => !gone.has(m.id)).length;
    this.loaded = this.loaded.filter((m) => !gone.has(m.id));
    if (this.loaded.length === before) return;
    for (const id of gone) this.els.delete(id);
    this.start = keptBefore;
    this.end = keptBefore + keptShown;
    this.els.clear(); // day and sharer grouping may change around the gap
    this._render();
  }

  // ------------------------------------------------------------------ menu and keys

  _contextMenu(ev) {
    const el = ev.target.closest(".msg");
    if (!el) return;
    ev.preventDefault();
    if (isMenuOpen()) return; // opened by the key already
    const keyboard = ev.button !== 2 && ev.clientX === 0 && ev.clientY === 0;
    this._menuFor(el, keyboard ? { anchor: el } : { x: ev.clientX, y: ev.clientY });
  }

  _menuFor(el, at) {
    const m = this.loaded.find((x) => x.id === Number(el.dataset.id));
    if (!m) return;
    const sel = window.getSelection();
    const selected = sel && !sel.isCollapsed && el.contains(sel.anchorNode) ? sel.toString() : "";
    showMenu({
      label: "Message",
      opener: el,
      at,
      items: [
        { label: "Copy", action: () => this._copy(selected || m.text, Boolean(selected)) },
        { label: "Delete", class: "danger", action: () => this._deleteMessage(m) },
      ],
    });
  }

  async _copy(text, partial) {
    try {
      await navigator.clipboard.writeText(text);
      this.app.announce(partial ? "Selected text copied" : "Message copied", { toast: true });
    } catch (err) {
      this.app.fail(new Error("Could not copy: the browser refused the clipboard."));
    }
  }

  async _deleteMessage(m) {
    const el = this.els.get(m.id);
    const next = el && (el.nextElementSibling || el.previousElementSibling);
    try {
      await this.app.rpc.call("delete_message", { id: m.id });
      this.removeMessages([m.id]);
      this.app.announce("Message deleted", { toast: true });
      const target = next && next.classList && next.classList.contains("msg") && this.els.get(Number(next.dataset.id));
      if (target) target.focus();
      else this.log.focus();
    } catch (err) {
      this.app.fail(err);
    }
  }

  _key(ev) {
    const msg = ev.target.closest ? ev.target.closest(".msg") : null;
    if ((ev.key === "ContextMenu" || (ev.key === "F10" && ev.shiftKey)) && msg) {
      ev.preventDefault();
      this._menuFor(msg, { anchor: msg });
      return;
    }
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const all = [...this.log.querySelectorAll(".msg")];
    if (!all.length) return;
    const at = msg ? all.indexOf(msg) : all.length;
    let next = null;
    if (ev.key === "ArrowUp") next = all[Math.max(0, at - 1)];
    else if (ev.key === "ArrowDown") next = all[Math.min(all.length - 1, at + 1)];
    else if (ev.key === "Home" && ev.target === this.log) next = all[0];
    else if (ev.key === "End" && ev.target === this.log) next = all[all.length - 1];
    if (next && (msg || ev.target === this.log)) {
      ev.preventDefault();
      next.focus();
      next.scrollIntoView({ block: "nearest" });
    }
  }
}

function sameGroup(prev, m) {
  if (!prev || m.sender) return false; // every message of another sharer has its header
  const a = prev.sender ? prev.sender.ext : prev.direction;
  const b = m.sender ? m.sender.ext : m.direction;
  return a === b && m.at - prev.at < 300;
}
