// The conversation list (a listbox named "Conversations"), most recent activity first:
// name or number, the last message's preview, its time and an unread badge. Focus stays
// on the listbox; arrows move the active option (aria-activedescendant), Enter opens it.
import { avatar, h, listTime } from "./dom.js";

export class ConversationList {
  constructor(el, app) {
    this.el = el;
    this.app = app;
    this.items = new Map(); // id -> option element
    this.active = null;
    el.addEventListener("click", (ev) => {
      const opt = ev.target.closest("[role=option]");
      if (opt) this.app.go(`#/c/${opt.dataset.id}`);
    });
    el.addEventListener("keydown", (ev) => this._key(ev));
    el.addEventListener("focus", () => {
      if (!this.active || !this.items.has(this.active)) {
        const first = this.el.firstElementChild;
        if (first) this._activate(Number(first.dataset.id));
      }
    });
  }

  /** The conversations in list order (app.order). Rebuilds what changed. */
  render() {
    const seen = new Set();
    let prev = null;
    const frag = this.el.childElementCount === 0 ? document.createDocumentFragment() : null;
    for (const id of this.app.order) {
      const conv = this.app.convs.get(id);
      if (!conv) continue;
      seen.add(id);
      let opt = this.items.get(id);
      const key = stamp(conv, this.app.currentId());
      if (!opt || opt.dataset.stamp !== key) {
        const fresh = this._option(conv, key);
        if (opt) opt.replaceWith(fresh);
        opt = fresh;
        this.items.set(id, opt);
      }
      if (frag) frag.append(opt);
      else if (prev ? prev.nextElementSibling !== opt : this.el.firstElementChild !== opt) {
        if (prev) prev.after(opt);
        else this.el.prepend(opt);
      }
      prev = opt;
    }
    if (frag) this.el.append(frag);
    for (const [id, opt] of this.items) {
      if (!seen.has(id)) {
        opt.remove();
        this.items.delete(id);
      }
    }
    if (this.active && !this.items.has(this.active)) this.active = null;
    if (this.active) this._activate(this.active, false);
    this.el.classList.toggle("is-empty", this.items.size === 0);
    this.el.setAttribute("aria-busy", "false");
  }

  _option(conv, key) {
    const unread = conv.unread > 0;
    const selected = conv.id === this.app.currentId();
    const preview = conv.last_text === null ? "" : previewText(conv);
    const time = listTime(conv.last_at);
    const label = [conv.title, unread ? `${conv.unread} unread` : null, preview, time]
      .filter(Boolean)
      .join(", ");
    const opt = h(
      "div",
      {
        role: "option",
        id: `conv-${conv.id}`,
        class: `conv${unread ? " unread" : ""}`,
        "aria-selected": selected ? "true" : "false",
        "aria-label": label,
        dataset: { id: String(conv.id), stamp: key },
      },
      avatar(conv.title, conv.remote),
      h(
        "span",
        { class: "conv-main" },
        h(
          "span",
          { class: "conv-top" },
          h("span", { class: "conv-title" }, conv.title),
          h("span", { class: "conv-time" }, time),
        ),
        h(
          "span",
          { class: "conv-bottom" },
          h("span", { class: "conv-preview" }, preview || "\u00a0"),
          unread ? h("span", { class: "badge" }, conv.unread > 99 ? "99+" : String(conv.unread)) : null,
        ),
      ),
    );
    return opt;
  }

  /** Marks `id` the active option (focus ring) and scrolls it into view. */
  _activate(id, scroll = true) {
    const opt = this.items.get(id);
    if (!opt) return;
    for (const o of this.el.querySelectorAll(".conv.active")) o.classList.remove("active");
    opt.classList.add("active");
    this.active = id;
    this.el.setAttribute("aria-activedescendant", opt.id);
    if (scroll) opt.scrollIntoView({ block: "nearest" });
  }

  select(id) {
    if (id !== null && this.items.has(id)) this._activate(id);
  }

  _key(ev) {
    const opts = [...this.el.children];
    if (!opts.length) return;
    const at = opts.findIndex((o) => Number(o.dataset.id) === this.active);
    let next = null;
    if (ev.key === "ArrowDown") next = opts[Math.min(at + 1, opts.length - 1)];
    else if (ev.key === "ArrowUp") next = opts[Math.max(at - 1, 0)];
    else if (ev.key === "Home") next = opts[0];
    else if (ev.key === "End") next = opts[opts.length - 1];
    else if (ev.key === "PageDown") next = opts[Math.min(at + 10, opts.length - 1)];
    else if (ev.key === "PageUp") next = opts[Math.max(at - 10, 0)];
    else if ((ev.key === "Enter" || ev.key === " ") && at >= 0) {
      ev.preventDefault();
      this.app.go(`#/c/${opts[at].dataset.id}`, { focus: true });
      return;
    }
    if (next && !ev.altKey && !ev.ctrlKey) {
      ev.preventDefault();
      this._activate(Number(next.dataset.id));
    }
  }
}

function previewText(conv) {
  const text = (conv.last_text || "").replace(/\s+/gu, " ").trim();
  const shown = text || "(file)";
  return shown;
}

function stamp(conv, currentId) {
  return [conv.title, conv.unread, conv.last_at, conv.last_text, conv.last_direction, conv.id === currentId].join("\u0001");
}
