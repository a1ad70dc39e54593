// Pop-up menus (role=menu): the message's context menu, the unread menu, a conversation's
// menu. One at a time; arrows move between items, Esc or a click elsewhere closes it and
// gives the focus back to what opened it.
import { h } from "./dom.js";

let openMenu = null;

/** Closes the open menu, if any; true when one was open. */
export function closeMenu({ restoreFocus = true } = {}) {
  if (!openMenu) return false;
  const { el, opener, onClose } = openMenu;
  openMenu = null;
  el.remove();
  if (opener) opener.setAttribute("aria-expanded", "false");
  if (onClose) onClose();
  if (restoreFocus && opener && document.contains(opener)) opener.focus();
  return true;
}

export function isMenuOpen() {
  return openMenu !== null;
}

/**
 * Shows a menu named `label` with `items` ([{label, action, disabled}] or "separator").
 * at: {x, y} (a pointer) or {anchor: element} (below/above it). opener gets the focus back.
 */
export function showMenu({ label, items, at, opener = null, onClose = null, id = null }) {
  closeMenu({ restoreFocus: false });
  const el = h("div", { class: "menu", role: "menu", "aria-label": label, id, tabindex: "-1" });
  const buttons = [];
  for (const item of items) {
    if (item === "separator") {
      el.append(h("div", { class: "sep", role: "separator" }));
      continue;
    }
    const b = h(
      "button",
      {
        type: "button",
        role: "menuitem",
        class: item.class || null,
        tabindex: "-1",
        "aria-disabled": item.disabled ? "true" : null,
        onclick: (ev) => {
          ev.stopPropagation();
          if (item.disabled) return;
          closeMenu({ restoreFocus: !item.keepFocus });
          item.action();
        },
      },
      item.content || item.label,
    );
    if (item.content) b.setAttribute("aria-label", item.label);
    buttons.push(b);
    el.append(b);
  }
  el.addEventListener("keydown", (ev) => {
    const i = buttons.indexOf(document.activeElement);
    let next = null;
    if (ev.key === "ArrowDown") next = buttons[(i + 1) % buttons.length];
    else if (ev.key === "ArrowUp") next = buttons[(i - 1 + buttons.length) % buttons.length];
    else if (ev.key === "Home") next = buttons[0];
    else if (ev.key === "End") next = buttons[buttons.length - 1];
    else if (ev.key === "Escape") {
      ev.preventDefault();
      ev.stopPropagation();
      closeMenu();
      return;
    } else if (ev.key === "Tab") {
      closeMenu();
      return;
    }
    if (next) {
      ev.preventDefault();
      next.focus();
    }
  });
  document.body.append(el);
  place(el, at);
  if (opener) opener.setAttribute("aria-expanded", "true");
  openMenu = { el, opener, onClose };
  (buttons[0] || el).focus();
  return el;
}

function place(el, at) {
  const w = el.offsetWidth;
  const hgt = el.offsetHeight;
  const vw = document.documentElement.clientWidth;
  const vh = document.documentElement.clientHeight;
  let x;
  let y;
  if (at && at.anchor) {
    const r = at.anchor.getBoundingClientRect();
    x = at.align === "right" ? r.right - w : r.left;
    y = r.bottom + 4;
    if (y + hgt > vh - 4) y = r.top - hgt - 4;
  } else {
    x = at ? at.x : 0;
    y = at ? at.y : 0;
    if (y + hgt > vh - 4) y = y - hgt;
  }
  x = Math.max(4, Math.min(x, vw - w - 4));
  y = Math.max(4, Math.min(y, vh - hgt - 4));
  el.style.left = `${x}px`;
  el.style.top = `${y}px`;
}

document.addEventListener(
  "pointerdown",
  (ev) => {
    if (openMenu && !openMenu.el.contains(ev.target) && ev.target !== openMenu.opener) {
      closeMenu({ restoreFocus: false });
    }
  },
  true,
);
window.addEventListener("resize", () => closeMenu({ restoreFocus: false }));
