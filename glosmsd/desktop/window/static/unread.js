// The bottom of the left column: the user's SMS number as "Copy my number" (or the alert
// icon with "No SMS number assigned"), and the "Unread messages" button with its red
// circle and its menu: `Name (3)` per conversation with unread messages, "Mark all as read".
import { h, icon } from "./dom.js";
import { closeMenu, isMenuOpen, showMenu } from "./menu.js";

export class BottomBar {
  constructor(el, app) {
    this.el = el;
    this.app = app;
    this.copied = h("span", { class: "copied", role: "status" });
    this.count = h("span", { class: "count", id: "unread-count", hidden: true });
    this.unread = h(
      "button",
      {
        type: "button",
        id: "unread",
        class: "unread-btn",
        "aria-label": "Unread messages",
        "aria-haspopup": "menu",
        "aria-expanded": "false",
        "aria-describedby": "unread-count",
        title: "Unread messages",
      },
      icon("chat"),
      this.count,
    );
    this.unread.addEventListener("click", () => {
      if (isMenuOpen()) closeMenu();
      else this.openMenu();
    });
    this.number = h("div", { class: "mynumber" });
    el.replaceChildren(this.number, this.unread);
  }

  renderNumber() {
    const own = this.app.number;
    if (own && own.number) {
      const btn = h(
        "button",
        { type: "button", id: "copy-number", class: "copy-number", "aria-label": "Copy my number", title: "Copy my number" },
        icon("copy", "icon small"),
        h("span", { class: "num" }, own.number),
      );
      btn.addEventListener("click", () => this.copyNumber(own.number));
      this.number.replaceChildren(btn, this.copied);
    } else {
      this.number.replaceChildren(
        h(
          "span",
          { class: "nonumber", role: "note" },
          icon("alert", "icon small alert"),
          h("span", {}, "No SMS number assigned"),
        ),
      );
    }
  }

  async copyNumber(number) {
    try {
      await navigator.clipboard.writeText(number);
      this.copied.textContent = "Copied";
      this.app.announce(`Your number ${number} was copied`);
      clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.copied.textContent = "";
      }, 2500);
    } catch {
      this.app.fail(new Error("Could not copy: the browser refused the clipboard."));
    }
  }

  renderUnread() {
    const total = this.app.unreadTotal();
    if (total > 0) {
      this.count.hidden = false;
      this.count.textContent = total > 99 ? "99+" : String(total);
      this.count.setAttribute("aria-label", `${total} unread`);
    } else {
      this.count.hidden = true;
      this.count.textContent = "";
    }
    document.title = total > 0 ? `(${total}) SMS` : "SMS";
  }

  openMenu() {
    const app = this.app;
    const unread = app.order.map((id) => app.convs.get(id)).filter((c) => c && c.unread > 0);
    const items = unread.map((c) => ({
      label: `${c.title} (${c.unread})`,
      action: () => app.go(`#/c/${c.id}`, { focus: true }),
    }));
    if (!items.length) items.push({ label: "No unread messages", disabled: true, action: () => {} });
    items.push("separator", {
      label: "Mark all as read",
      disabled: unread.length === 0,
      action: () => app.markAllRead(),
    });
    showMenu({
      label: "Unread messages",
      id: "unread-menu",
      opener: this.unread,
      at: { anchor: this.unread, align: "right" },
      items,
    });
  }
}
