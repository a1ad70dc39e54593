// The Search field: as the user types, the daemon's `search` (contacts, conversations and
// message text) replaces the list, with the matches highlighted. A contact starts or opens
// its conversation (several numbers: "Which number?"); a conversation or a message opens it.
import { avatar, clock, h, highlight, listTime, searchTerms } from "./dom.js";

const DEBOUNCE_MS = 120;

export class Search {
  constructor(input, results, app) {
    this.input = input;
    this.results = results;
    this.app = app;
    this.seq = 0;
    this.timer = null;
    this.query = "";
    input.addEventListener("input", () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.run(), DEBOUNCE_MS);
    });
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape" && input.value) {
        ev.preventDefault();
        ev.stopPropagation();
        this.clear();
      } else if (ev.key === "ArrowDown") {
        const first = this.results.querySelector("button");
        if (first) {
          ev.preventDefault();
          first.focus();
        }
      }
    });
    results.addEventListener("keydown", (ev) => {
      const all = [...results.querySelectorAll("button")];
      const at = all.indexOf(document.activeElement);
      if (ev.key === "ArrowDown" && at >= 0) {
        ev.preventDefault();
        (all[at + 1] || all[at]).focus();
      } else if (ev.key === "ArrowUp" && at >= 0) {
        ev.preventDefault();
        if (at === 0) input.focus();
        else all[at - 1].focus();
      } else if (ev.key === "Escape") {
        ev.preventDefault();
        this.clear();
        input.focus();
      }
    });
  }

  clear() {
    this.input.value = "";
    this.run();
  }

  async run() {
    const query = this.input.value.trim();
    const mine = ++this.seq;
    this.query = query;
    if (!query) {
      this.results.hidden = true;
      this.results.replaceChildren();
      document.body.classList.remove("searching");
      return;
    }
    let found;
    try {
      found = await this.app.rpc.call("search", { query, limit: 30 });
    } catch (err) {
      if (mine === this.seq) this.app.fail(err);
      return;
    }
    if (mine !== this.seq) return;
    this.show(query, found);
  }

  show(query, found) {
    const terms = searchTerms(query);
    const sections = [];
    const section = (title, items) => {
      if (!items.length) return;
      const id = `results-${title.toLowerCase()}`;
      sections.push(
        h(
          "section",
          { class: "results-section", "aria-labelledby": id },
          h("h3", { id, class: "results-title" }, title),
          h("ul", { class: "results-list" }, items.map((el) => h("li", {}, el))),
        ),
      );
    };
    section(
      "Contacts",
      found.contacts.map((c) =>
        h(
          "button",
          { type: "button", class: "result", onclick: () => this.app.startWithContact(c) },
          avatar(c.name, c.name),
          h(
            "span",
            { class: "result-main" },
            h("span", { class: "result-title" }, highlight(c.name, terms)),
            h("span", { class: "result-sub" }, c.numbers.map((n) => `${n.label ? `${n.label} ` : ""}${n.number}`).join(" · ")),
          ),
        ),
      ),
    );
    section(
      "Conversations",
      found.conversations.map((c) =>
        h(
          "button",
          { type: "button", class: "result", onclick: () => this.app.go(`#/c/${c.id}`, { focus: true }) },
          avatar(c.title, c.remote),
          h(
            "span",
            { class: "result-main" },
            h("span", { class: "result-title" }, highlight(c.title, terms)),
            h("span", { class: "result-sub" }, highlight(c.remote, terms)),
          ),
          h("span", { class: "result-time" }, listTime(c.last_at)),
        ),
      ),
    );
    section(
      "Messages",
      found.messages.map((m) => {
        const conv = this.app.convs.get(m.conversation_id);
        const title = conv ? conv.title : m.remote;
        return h(
          "button",
          { type: "button", class: "result", onclick: () => this.app.go(`#/c/${m.conversation_id}`, { focus: true }) },
          avatar(title, m.remote),
          h(
            "span",
            { class: "result-main" },
            h("span", { class: "result-title" }, title),
            h("span", { class: "result-sub snippet" }, highlight(snippet(m.text, terms), terms)),
          ),
          h("span", { class: "result-time" }, `${listTime(m.at)}${listTime(m.at).includes(":") ? "" : ` ${clock(m.at)}`}`),
        );
      }),
    );
    if (!sections.length) {
      sections.push(h("p", { class: "results-none" }, `Nothing matches “${query}”.`));
    }
    this.results.replaceChildren(...sections);
    this.results.hidden = false;
    document.body.classList.add("searching");
    const n = found.contacts.length + found.conversations.length + found.messages.length;
    this.app.announce(n ? `${n} results` : "No results");
  }
}

/** Up to ~90 characters of `text` around its first match. */
function snippet(text, terms) {
  const flat = text.replace(/\s+/gu, " ");
  const lower = flat.toLowerCase();
  let at = -1;
  for (const t of terms) {
    const i = lower.indexOf(t);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  if (flat.length <= 90 || at < 40) return flat.length <= 90 ? flat : `${flat.slice(0, 88)}…`;
  const start = Math.max(0, at - 30);
  const piece = flat.slice(start, start + 88);
  return `…${piece}${start + 88 < flat.length ? "…" : ""}`;
}
