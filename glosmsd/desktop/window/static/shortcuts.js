// Keyboard shortcuts for the whole page and the "?" sheet that lists them.
import { h } from "./dom.js";
import { closeMenu } from "./menu.js";
import { modal } from "./dialogs.js";

export const SHORTCUTS = [
  ["Ctrl+K or Ctrl+F", "Search"],
  ["Alt+Up / Alt+Down", "Previous / next conversation"],
  ["Alt+N", "New conversation"],
  ["Up / Down, Enter", "Move in the conversation list, open one"],
  ["Up / Down in Messages", "Move between messages"],
  ["Menu key or Shift+F10", "Message menu: Copy, Delete"],
  ["Ctrl+Enter", "Send the message"],
  ["Esc", "Close a menu or dialog, clear the search"],
  ["?", "This list"],
];

export function showShortcuts() {
  return modal(
    "Keyboard shortcuts",
    (_d, close) => [
      h(
        "dl",
        { class: "shortcuts" },
        SHORTCUTS.map(([keys, what]) => [h("dt", {}, keys.split(/( or | \/ |, )/u).map((k) => (/^( or | \/ |, )$/u.test(k) ? k : h("kbd", {}, k)))), h("dd", {}, what)]),
      ),
      h("div", { class: "dialog-buttons" }, h("button", { type: "button", onclick: () => close(undefined) }, "Close")),
    ],
    { cls: "shortcuts-dialog" },
  );
}

function typing(target) {
  if (!target || !target.closest) return false;
  return Boolean(target.closest("input, textarea, select, [contenteditable=''], [contenteditable=true]"));
}

export function installShortcuts(app) {
  document.addEventListener("keydown", (ev) => {
    if (ev.defaultPrevented) return;
    const key = ev.key;
    const ctrl = ev.ctrlKey || ev.metaKey;
    if (document.querySelector("dialog[open]")) return; // a dialog keeps its keys
    if (ctrl && !ev.altKey && (key === "k" || key === "K" || key === "f" || key === "F")) {
      ev.preventDefault();
      app.focusSearch();
    } else if (ev.altKey && !ctrl && (key === "ArrowUp" || key === "ArrowDown")) {
      ev.preventDefault();
      app.step(key === "ArrowUp" ? -1 : 1);
    } else if (ev.altKey && !ctrl && (key === "n" || key === "N")) {
      ev.preventDefault();
      app.newConversation();
    } else if (key === "Escape") {
      if (closeMenu()) ev.preventDefault();
    } else if (key === "?" && !ctrl && !ev.altKey && !typing(ev.target)) {
      ev.preventDefault();
      showShortcuts();
    }
  });
}
