// The page's modal dialogs (native <dialog>: focus kept inside, Esc closes): "Which
// number?", the "Delete conversation" confirmation, "New conversation", who shares the
// number, an image shown large, and the keyboard shortcuts sheet (shortcuts.js fills it).
import { avatar, h, icon } from "./dom.js";

let serial = 0;

/** Opens a modal dialog titled `title`; build(dialog, close) returns its body nodes.
 * Resolves with what close(value) was given (undefined on Esc or Cancel). */
export function modal(title, build, { cls = "", describedBy = false } = {}) {
  return new Promise((resolve) => {
    const id = `dlg-${++serial}`;
    const opener = document.activeElement;
    const dialog = h("dialog", { class: `dialog ${cls}`, "aria-labelledby": `${id}-title` });
    let result;
    const close = (value) => {
      result = value;
      dialog.close();
    };
    const body = build(dialog, close);
    dialog.append(h("h2", { id: `${id}-title`, class: "dialog-title" }, title), ...[body].flat());
    if (describedBy) {
      const desc = dialog.querySelector(".dialog-text");
      if (desc) {
        desc.id = `${id}-desc`;
        dialog.setAttribute("aria-describedby", desc.id);
      }
    }
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener && document.contains(opener) && opener.focus) opener.focus();
      resolve(result);
    });
    dialog.addEventListener("click", (ev) => {
      if (ev.target === dialog) close(undefined); // the backdrop
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

function buttons(...list) {
  return h("div", { class: "dialog-buttons" }, list);
}

/** "Which number?": resolves with the chosen {label, number} or undefined. */
export function pickNumber(contact) {
  return modal(
    "Which number?",
    (_d, close) => [
      h("p", { class: "dialog-text" }, `${contact.name} has ${contact.numbers.length} numbers.`),
      h(
        "div",
        { class: "choices" },
        contact.numbers.map((n) =>
          h(
            "button",
            { type: "button", class: "choice", onclick: () => close(n) },
            h("span", { class: "choice-label" }, n.label || "number"),
            h("span", { class: "choice-number" }, n.number),
          ),
        ),
      ),
      buttons(h("button", { type: "button", class: "secondary", onclick: () => close(undefined) }, "Cancel")),
    ],
    { describedBy: true },
  );
}

/** Asks before deleting a conversation; resolves true to delete. */
export function confirmDelete(conv) {
  return modal(
    "Delete conversation",
    (_d, close) => [
      h(
        "p",
        { class: "dialog-text" },
        `Delete the conversation with ${conv.title}? It is deleted on all your devices and cannot be undone.`,
      ),
      buttons(
        h("button", { type: "button", class: "secondary", onclick: () => close(false) }, "Cancel"),
        h("button", { type: "button", class: "danger", onclick: () => close(true) }, "Delete"),
      ),
    ],
    { describedBy: true },
  ).then((v) => v === true);
}

/** Who shares the own number (other than the user). */
export function showSharers(sharers) {
  return modal("Multiple users share this number", (_d, close) => [
    h("p", { class: "dialog-text" }, "Everyone on this number sees all its messages:"),
    h(
      "ul",
      { class: "sharers", "aria-label": "Sharers" },
      sharers.map((s) =>
        h("li", {}, avatar(s.name, s.ext), h("span", { class: "sharer-name" }, s.name), h("span", { class: "sharer-ext" }, `extension ${s.ext}`)),
      ),
    ),
    buttons(h("button", { type: "button", onclick: () => close(undefined) }, "Close")),
  ]);
}

/** An image attachment, large. */
export function showImage(src, name) {
  return modal(
    name,
    (_d, close) => [
      h("div", { class: "viewer" }, h("img", { src, alt: name })),
      buttons(
        h("a", { class: "button secondary", href: src, download: name }, icon("download"), "Save"),
        h("button", { type: "button", onclick: () => close(undefined) }, "Close"),
      ),
    ],
    { cls: "image-dialog" },
  );
}

/**
 * "New conversation": a name or a number. findContacts(query) -> [{name, numbers}].
 * Resolves with {number} (typed or picked) or {contact} or undefined.
 */
export function newConversation(findContacts) {
  return modal("New conversation", (_d, close) => {
    const input = h("input", {
      type: "text",
      id: "new-to",
      autocomplete: "off",
      spellcheck: "false",
      "aria-describedby": "new-to-hint",
    });
    const list = h("div", { class: "suggestions", role: "list", "aria-label": "Contacts" });
    const error = h("p", { class: "dialog-error", role: "alert" });
    let timer = null;
    let seq = 0;
    const refresh = () => {
      const q = input.value.trim();
      const mine = ++seq;
      if (!q || /^[+\d\s().-]+$/u.test(q)) {
        list.replaceChildren();
        return;
      }
      findContacts(q).then((found) => {
        if (mine !== seq) return;
        list.replaceChildren(
          ...found.slice(0, 8).map((c) =>
            h(
              "div",
              { role: "listitem" },
              h(
                "button",
                { type: "button", class: "suggestion", onclick: () => close({ contact: c }) },
                avatar(c.name, c.name),
                h("span", { class: "s-name" }, c.name),
                h("span", { class: "s-numbers" }, c.numbers.map((n) => n.number).join(", ")),
              ),
            ),
          ),
        );
      });
    };
    input.addEventListener("input", () => {
      error.textContent = "";
      clearTimeout(timer);
      timer = setTimeout(refresh, 120);
    });
    const submit = (ev) => {
      ev.preventDefault();
      const q = input.value.trim();
      if (!q) {
        error.textContent = "Type a name or a phone number.";
        input.focus();
        return;
      }
      if (/^[+\d\s().-]+$/u.test(q)) {
        const digits = q.replace(/[^\d+]/gu, "");
        if (digits.replace("+", "").length < 3) {
          error.textContent = "That number is too short: type the whole number, e.g. +15557654321.";
          input.focus();
          return;
        }
        close({ number: digits });
        return;
      }
      findContacts(q).then((found) => {
        const exact = found.filter((c) => c.name.toLowerCase() === q.toLowerCase());
        const pick = exact.length === 1 ? exact : found;
        if (pick.length === 1) close({ contact: pick[0] });
        else if (!pick.length) error.textContent = `No contact named “${q}”. Type a phone number instead.`;
        else error.textContent = `${pick.length} contacts match “${q}”: pick one below.`;
      });
    };
    setTimeout(() => input.focus(), 0);
    return h(
      "form",
      { class: "newform", onsubmit: submit },
      h("label", { for: "new-to" }, "Name or number"),
      input,
      h("p", { id: "new-to-hint", class: "hint" }, "A contact's name, or a phone number such as +15557654321."),
      error,
      list,
      buttons(
        h("button", { type: "button", class: "secondary", onclick: () => close(undefined) }, "Cancel"),
        h("button", { type: "submit" }, "Start"),
      ),
    );
  });
}
