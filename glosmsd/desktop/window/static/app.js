// The SMS window's entry point: connects to the daemon (rpc.js), loads the user's details
// and the conversations, subscribes to events, routes by location.hash (#/, #/c/ID,
// #/new/NUMBER) and keeps every part of the page live. It never implements a rule the
// daemon owns: counts, numbers, sending are the daemon's (the composer asks it).
import { Rpc } from "./rpc.js";
import { h } from "./dom.js";
import { ConversationList } from "./list.js";
import { ConversationView } from "./conversation.js";
import { BottomBar } from "./unread.js";
import { Search } from "./search.js";
import { installShortcuts } from "./shortcuts.js";
import { newConversation, pickNumber } from "./dialogs.js";

const FIRST_PAGE = 100; // the first screenfuls at once, the rest right after
const LIST_PAGE = 500;
const ANNOUNCE_GAP_MS = 1500;

class App {
  constructor(rpc) {
    this.rpc = rpc;
    this.convs = new Map();
    this.order = [];
    this.status = null;
    this.number = null;
    this.total = 0;
    this.autoDownload = true;
    this.keyboard = false;
    this.composer = null;
    this.lastEvent = 0;
    this.routeSeq = 0;
    this.live = document.getElementById("announce");
    this.banner = document.getElementById("banner");
    this.list = new ConversationList(document.getElementById("conversations"), this);
    this.view = new ConversationView(this);
    this.bottom = new BottomBar(document.getElementById("bottom"), this);
    this.search = new Search(document.getElementById("search"), document.getElementById("results"), this);
    this.pending = [];
    this.announceTimer = null;
    document.addEventListener("keydown", () => (this.keyboard = true), true);
    document.addEventListener("pointerdown", () => (this.keyboard = false), true);
    document.getElementById("new-conversation").addEventListener("click", () => this.newConversation());
  }

  // ------------------------------------------------------------------ start

  async start() {
    const rpc = this.rpc;
    rpc.on("event", (ev) => this.onEvent(ev));
    rpc.on("window.show", (p) => {
      this.go(p && p.conversation ? `#/c/${p.conversation}` : "#/");
      window.focus();
    });
    rpc.onclose(() =>
      this.showBanner("The SMS window was closed by glosmsd; open it again with `glosms open`.", "closed"),
    );
    // The composer's module loads while the daemon answers; the list does not wait for it.
    const composer = this.mountComposer();
    performance.mark("glosms-connected");
    // All at once (the daemon runs up to 8 of a page's calls together): subscribe first,
    // so nothing that happens after the list was read is missed.
    const [, sub, status, number, prefs, first] = await Promise.all([
      rpc.call("hello", { protocol: 1, client: "glosms-window/1" }),
      rpc.call("subscribe", {}),
      rpc.call("status"),
      rpc.call("number"),
      rpc.call("prefs_get").catch(() => ({})),
      rpc.call("conversations", { limit: FIRST_PAGE }),
    ]);
    performance.mark("glosms-data");
    this.lastEvent = sub.last_id;
    this.status = status;
    this.number = number;
    this.total = status.unread;
    this.autoDownload = prefs.auto_download !== false;
    this.renderMe();
    this.bottom.renderNumber();
    this.setLink(status.link);
    this.mergeConversations(first);
    performance.mark("glosms-list");
    window.addEventListener("hashchange", () => this.route());
    await this.route();
    document.documentElement.dataset.ready = "1";
    performance.mark("glosms-ready"); // bench/bench_window.py: the window is usable
    if (first.length === FIRST_PAGE) this.loadRest(FIRST_PAGE);
    await composer;
  }

  async loadRest(offset) {
    for (;;) {
      const page = await this.rpc.call("conversations", { limit: LIST_PAGE, offset });
      this.mergeConversations(page);
      if (page.length < LIST_PAGE) return;
      offset += LIST_PAGE;
    }
  }

  async mountComposer() {
    const section = document.getElementById("composer");
    section.addEventListener("glosms:sent", (ev) => {
      const d = ev.detail || {};
      if (d.message) this.onMessage(d.message);
      if (d.conversation_id && this.view.id === null) this.go(`#/c/${d.conversation_id}`);
    });
    try {
      const mod = await import("./composer.js");
      this.composer = mod.mountComposer(section, { rpc: this.rpc, announce: (t) => this.announce(t) });
    } catch (err) {
      console.warn("composer not available", err);
      this.composer = null;
      return;
    }
    // Mounted after the first route: give it what is open now.
    const conv = this.view.conv;
    if (conv) this.composer.setConversation(conv.id === null ? { id: null, number: conv.remote, remote: conv.remote } : conv);
  }

  renderMe() {
    const me = document.getElementById("me");
    const ext = this.status.extension || {};
    me.replaceChildren(
      h("div", { class: "me-name" }, ext.name || "SMS"),
      h(
        "div",
        { class: "me-sub" },
        [ext.ext ? `Extension ${ext.ext}` : null, this.number.number].filter(Boolean).join(" · ") ||
          "No SMS number assigned",
      ),
    );
  }

  // ------------------------------------------------------------------ state

  ownNumber() {
    return this.number ? this.number.number : null;
  }

  mmsMaxBytes() {
    const s = this.status && this.status.settings;
    return s && s.mms_max_bytes ? s.mms_max_bytes : 500 * 1024;
  }

  currentId() {
    return this.view.conv ? this.view.conv.id : null;
  }

  unreadTotal() {
    return this.total;
  }

  mergeConversations(list) {
    for (const c of list) this.convs.set(c.id, c);
    this.sort();
  }

  sort() {
    this.order = [...this.convs.values()]
      .sort((a, b) => (b.last_at || 0) - (a.last_at || 0) || b.id - a.id)
      .map((c) => c.id);
    this.list.render();
    this.bottom.renderUnread();
  }

  removeConversation(id) {
    if (this.convs.delete(id)) this.sort();
  }

  async refreshConversation(id) {
    try {
      const res = await this.rpc.call("messages", { conversation: id, limit: 1 });
      this.convs.set(res.conversation.id, res.conversation);
      this.sort();
    } catch (err) {
      if (err.data && err.data.kind === "not-found") this.removeConversation(id);
    }
  }

  // ------------------------------------------------------------------ routing

  go(hash, { focus = false } = {}) {
    this.focusAfterRoute = focus;
    if (location.hash === hash || (hash === "#/" && !location.hash)) this.route();
    else location.hash = hash;
  }

  async route() {
    const mine = ++this.routeSeq;
    const hash = location.hash || "#/";
    const focus = this.focusAfterRoute;
    this.focusAfterRoute = false;
    let m = /^#\/c\/(\d+)$/u.exec(hash);
    if (m) {
      const id = Number(m[1]);
      this.showPane(true);
      this.list.select(id);
      let conv;
      try {
        conv = await this.view.open(id);
      } catch (err) {
        if (mine !== this.routeSeq) return;
        this.fail(err);
        this.go("#/");
        return;
      }
      if (!conv || mine !== this.routeSeq) return;
      this.convs.set(conv.id, conv);
      this.sort();
      this.list.select(conv.id);
      if (this.composer) this.composer.setConversation(conv);
      if (conv.unread > 0) this.markRead(conv.id);
      if (focus) this.focusConversation();
      return;
    }
    m = /^#\/new\/([^/]+)$/u.exec(hash);
    if (m) {
      const number = decodeURIComponent(m[1]);
      const existing = [...this.convs.values()].find((c) => c.remote === number);
      if (existing) {
        this.go(`#/c/${existing.id}`, { focus });
        return;
      }
      this.showPane(true);
      this.view.openNew(number, this.pendingName && this.pendingName.number === number ? this.pendingName.name : null);
      this.list.render();
      if (this.composer) this.composer.setConversation({ id: null, number, remote: number });
      if (this.composer) this.composer.focus();
      return;
    }
    this.view.close();
    this.showPane(false);
    if (this.composer) this.composer.setConversation(null);
    this.list.render();
    if (focus) document.getElementById("conversations").focus();
  }

  showPane(open) {
    document.getElementById("open").hidden = !open;
    document.getElementById("empty").hidden = open;
    document.body.classList.toggle("in-conversation", open);
  }

  focusConversation() {
    if (this.composer) this.composer.focus();
    else document.getElementById("messages").focus();
  }

  /** Alt+Up / Alt+Down: the previous or next conversation of the list. */
  step(delta) {
    if (!this.order.length) return;
    const at = this.order.indexOf(this.currentId());
    const next = at < 0 ? (delta > 0 ? 0 : this.order.length - 1) : Math.max(0, Math.min(this.order.length - 1, at + delta));
    this.go(`#/c/${this.order[next]}`);
  }

  focusSearch() {
    const s = document.getElementById("search");
    s.focus();
    s.select();
  }

  // ------------------------------------------------------------------ actions

  async markRead(id) {
    try {
      await this.rpc.call("mark_read", { conversation: id });
    } catch (err) {
      this.fail(err);
    }
  }

  async markAllRead() {
    try {
      const res = await this.rpc.call("mark_read", {});
      this.announce(res.marked ? "All conversations marked as read" : "Nothing was unread");
    } catch (err) {
      this.fail(err);
    }
  }

  async openLink(url) {
    try {
      await this.rpc.call("open_link", { url });
    } catch (err) {
      this.fail(err);
    }
  }

  /** A contact picked in the search or "New conversation": its conversation, or a new one. */
  async startWithContact(contact) {
    let choice = contact.numbers[0];
    if (contact.numbers.length > 1) {
      choice = await pickNumber(contact);
      if (!choice) return;
    }
    if (!choice) {
      this.fail(new Error(`${contact.name} has no phone number.`));
      return;
    }
    this.search.clear();
    this.startWithNumber(choice.number, contact.name);
  }

  startWithNumber(number, name = null) {
    const existing = [...this.convs.values()].find((c) => c.remote === number);
    if (existing) {
      this.go(`#/c/${existing.id}`, { focus: true });
      return;
    }
    this.pendingName = { number, name };
    this.go(`#/new/${number}`, { focus: true });
  }

  async newConversation() {
    const got = await newConversation((query) => this.rpc.call("contacts", { query, limit: 10 }).catch(() => []));
    if (!got) return;
    if (got.contact) this.startWithContact(got.contact);
    else this.startWithNumber(got.number);
  }

  // ------------------------------------------------------------------ events

  onEvent(ev) {
    if (ev.id) this.lastEvent = Math.max(this.lastEvent, ev.id);
    const d = ev.data || {};
    switch (ev.kind) {
      case "message":
        this.onMessage(d.message, true);
        break;
      case "message_state":
        if (this.view.id === d.conversation_id) this.view.setState(d);
        break;
      case "unread":
        this.onUnread(d);
        break;
      case "deleted":
        this.onDeleted(d);
        break;
      case "link":
        this.setLink(d);
        break;
      case "reset":
        location.reload();
        break;
      default:
        break;
    }
  }

  onMessage(m, live = false) {
    if (!m) return;
    const conv = this.convs.get(m.conversation_id);
    if (conv) {
      if (!conv.last_at || m.at >= conv.last_at || m.id >= (conv.last_message_id || 0)) {
        conv.last_at = Math.max(conv.last_at || 0, m.at);
        conv.last_text = m.text || (m.files.length ? m.files.map((f) => f.name).join(", ") : "");
        conv.last_direction = m.direction;
        conv.last_message_id = m.id;
      }
      this.sort();
    } else {
      this.refreshConversation(m.conversation_id);
    }
    if (this.view.id === m.conversation_id) {
      this.view.addMessage(m);
      if (live && m.direction === "in" && document.visibilityState === "visible") this.markRead(m.conversation_id);
    }
    if (live && m.direction === "in") {
      const title = conv ? conv.title : m.remote;
      this.queueAnnouncement(title, m);
    }
  }

  onUnread(d) {
    this.total = d.total;
    const counts = new Map(d.conversations.map((c) => [c.id, c.count]));
    for (const c of this.convs.values()) c.unread = counts.get(c.id) || 0;
    this.sort();
  }

  onDeleted(d) {
    if (d.conversation) {
      const open = this.view.id === d.conversation_id;
      const conv = this.convs.get(d.conversation_id);
      this.removeConversation(d.conversation_id);
      if (open) {
        this.announce(`The conversation${conv ? ` with ${conv.title}` : ""} was deleted`);
        this.go("#/");
      }
      return;
    }
    if (this.view.id === d.conversation_id) this.view.removeMessages(d.message_ids);
    this.refreshConversation(d.conversation_id);
  }

  setLink(link) {
    if (!link) return;
    if (link.online) {
      if (this.banner.dataset.kind === "link") this.hideBanner();
      return;
    }
    const why = link.line || link.detail || "Offline";
    this.showBanner(`Not connected to the SMS server (${why}). Messages you send wait and go out when it is back.`, "link");
  }

  showBanner(text, kind) {
    if (this.banner.dataset.kind === "closed") return;
    this.banner.textContent = text;
    this.banner.dataset.kind = kind;
    this.banner.hidden = false;
    document.body.classList.add("has-banner");
  }

  hideBanner() {
    this.banner.hidden = true;
    this.banner.dataset.kind = "";
    document.body.classList.remove("has-banner");
  }

  // ------------------------------------------------------------------ speech

  /** Says `text` politely (screen readers), once. */
  announce(text, { toast = false } = {}) {
    this.spoken = (this.spoken || 0) + 1;
    this.live.textContent = "";
    // A new text node each time, so the same words twice are read twice.
    requestAnimationFrame(() => {
      this.live.textContent = text;
    });
    if (toast) this.toast(text);
  }

  /** New messages: one announcement per burst, never one per message of a flood. */
  queueAnnouncement(title, m) {
    this.pending.push({ title, m });
    if (this.announceTimer) return;
    this.announceTimer = setTimeout(() => {
      const burst = this.pending;
      this.pending = [];
      this.announceTimer = null;
      if (burst.length === 1) {
        const { title: t, m: msg } = burst[0];
        const text = msg.text ? msg.text.slice(0, 140) : `${msg.files.length} file${msg.files.length === 1 ? "" : "s"}`;
        this.announce(`New message from ${t}: ${text}`);
      } else {
        const who = [...new Set(burst.map((b) => b.title))];
        this.announce(`${burst.length} new messages from ${who.slice(0, 3).join(", ")}${who.length > 3 ? " and others" : ""}`);
      }
    }, ANNOUNCE_GAP_MS);
  }

  toast(text) {
    let el = document.getElementById("toast");
    if (!el) {
      el = h("div", { id: "toast", class: "toast", "aria-hidden": "true" });
      document.body.append(el);
    }
    el.textContent = text;
    el.classList.add("show");
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => el.classList.remove("show"), 2000);
  }

  /** An error for the user: said and shown, the page goes on. */
  fail(err) {
    const text = err && err.message ? err.message : String(err);
    let el = document.getElementById("error");
    if (!el) {
      el = h("div", { id: "error", class: "error-toast", role: "alert" });
      document.body.append(el);
    }
    el.textContent = text;
    el.classList.add("show");
    clearTimeout(this.errorTimer);
    this.errorTimer = setTimeout(() => {
      el.classList.remove("show");
      el.textContent = "";
    }, 6000);
  }
}

async function boot() {
  let rpc;
  try {
    rpc = await Rpc.connect();
  } catch {
    const banner = document.getElementById("banner");
    banner.textContent = "The SMS window was closed by glosmsd; open it again with `glosms open`.";
    banner.dataset.kind = "closed";
    banner.hidden = false;
    document.documentElement.dataset.ready = "0";
    return;
  }
  const app = new App(rpc);
  window.glosms = app;
  installShortcuts(app);
  try {
    await app.start();
  } catch (err) {
    app.fail(err);
    document.documentElement.dataset.ready = "0";
  }
}

boot();
