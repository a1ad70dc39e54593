// Building the page's DOM without ever parsing text as HTML: every string goes in as a
// text node (the CSP forbids inline script and style; message text is never markup).

const SVG_NS = "http://www.w3.org/2000/svg";

/** h("button", {class: "x", onclick: fn, "aria-label": "Call"}, child, "text", ...) */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const ICONS = {
  // 24x24 outlines, drawn with currentColor (so themes colour them).
  phone:
    "M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2a1 1 0 0 1 1-.25 11.4 11.4 0 0 0 3.6.57 1 1 0 0 1 1 1V20a1 1 0 0 1-1 1A17 17 0 0 1 3 4a1 1 0 0 1 1-1h3.5a1 1 0 0 1 1 1c0 1.25.2 2.45.57 3.57a1 1 0 0 1-.25 1L6.6 10.8z",
  trash: "M9 3h6l1 2h4v2H4V5h4l1-2zm-3 6h12l-1 12H7L6 9zm4 2v8h1.5v-8H10zm3.5 0v8H15v-8h-1.5z",
  people:
    "M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm7-1a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM9 13c-3.3 0-7 1.7-7 4v3h14v-3c0-2.3-3.7-4-7-4zm7 0c-.5 0-1 0-1.6.1 1.5 1 2.6 2.3 2.6 3.9v3h5v-3c0-2.2-3.3-4-6-4z",
  more: "M12 7a2 2 0 1 0 0-4 2 2 0 0 0 0 4zm0 7a2 2 0 1 0 0-4 2 2 0 0 0 0 4zm0 7a2 2 0 1 0 0-4 2 2 0 0 0 0 4z",
  back: "M15.4 5.4 14 4l-8 8 8 8 1.4-1.4L8.8 12z",
  chat: "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 1-2zm3 6v2h10V9H7zm0-3v2h10V6H7zm0 6v2h7v-2H7z",
  plus: "M11 5h2v6h6v2h-6v6h-2v-6H5v-2h6z",
  copy: "M8 3h10a2 2 0 0 1 2 2v12h-2V5H8V3zM5 7h10a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V9a2 2 0 0 1 2-2zm0 2v11h10V9H5z",
  alert: "M12 2 1 21h22L12 2zm-1 7h2v6h-2V9zm0 8h2v2h-2v-2z",
  bell: "M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5-6.7V3a2 2 0 1 0-4 0v1.3A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2z",
  file: "M6 2h8l6 6v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm7 1.5V9h5.5L13 3.5z",
  download: "M11 3h2v9.2l3.3-3.3 1.4 1.4L12 16l-5.7-5.7 1.4-1.4 3.3 3.3V3zM4 18h16v2H4v-2z",
  keyboard:
    "M3 5h18a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H3a2 2 0 0 1-2-2V7a2 2 0 0 1 2-2zm1 3v2h2V8H4zm3 0v2h2V8H7zm3 0v2h2V8h-2zm3 0v2h2V8h-2zm3 0v2h4V8h-4zM4 11v2h3v-2H4zm4 0v2h2v-2H8zm3 0v2h2v-2h-2zm3 0v2h2v-2h-2zm3 0v2h3v-2h-3zM6 14v2h12v-2H6z",
};

/** An inline SVG icon, hidden from screen readers (its button carries the name). */
export function icon(name, cls = "icon") {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", cls);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", ICONS[name] || "");
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

// ------------------------------------------------------------------------- text

const URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]}]/giu;

/** Text as nodes, with http(s) links as <a> that call onLink(url) instead of navigating,
 * and the words of `terms` (lower case) wrapped in <mark>. */
export function richText(text, { onLink = null, terms = [] } = {}) {
  const frag = document.createDocumentFragment();
  let last = 0;
  const pieces = [];
  if (onLink) {
    for (const m of text.matchAll(URL_RE)) {
      pieces.push([last, m.index, null]);
      pieces.push([m.index, m.index + m[0].length, m[0]]);
      last = m.index + m[0].length;
    }
  }
  pieces.push([last, text.length, null]);
  for (const [start, end, url] of pieces) {
    if (start >= end) continue;
    const part = text.slice(start, end);
    if (url) {
      const a = h("a", {
        href: url,
        rel: "noopener noreferrer",
        onclick: (ev) => {
          ev.preventDefault();
          onLink(url);
        },
      });
      a.append(highlight(part, terms));
      frag.append(a);
    } else {
      frag.append(highlight(part, terms));
    }
  }
  return frag;
}

/** `text` with every occurrence of each term (case-insensitive) in a <mark>. */
export function highlight(text, terms) {
  const frag = document.createDocumentFragment();
  const words = terms.filter((t) => t.length > 0);
  if (!words.length) {
    frag.append(text);
    return frag;
  }
  const lower = text.toLowerCase();
  let at = 0;
  while (at < text.length) {
    let best = -1;
    let len = 0;
    for (const w of words) {
      const i = lower.indexOf(w, at);
      if (i >= 0 && (best < 0 || i < best || (i === best && w.length > len))) {
        best = i;
        len = w.length;
      }
    }
    if (best < 0) break;
    if (best > at) frag.append(text.slice(at, best));
    frag.append(h("mark", {}, text.slice(best, best + len)));
    at = best + len;
  }
  if (at < text.length) frag.append(text.slice(at));
  return frag;
}

export function searchTerms(query) {
  return query
    .toLowerCase()
    .split(/[\s"*()]+/u)
    .filter((t) => t.length > 0);
}

// ------------------------------------------------------------------------- formats

const DAY = 86400 * 1000;

function startOfDay(d) {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
}

export function clock(at) {
  return new Date(at * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** The list's time: today a clock time, this week a weekday, else a short date. */
export function listTime(at) {
  if (!at) return "";
  const d = new Date(at * 1000);
  const today = startOfDay(new Date());
  const day = startOfDay(d);
  if (day === today) return clock(at);
  if (today - day < 6 * DAY) return d.toLocaleDateString([], { weekday: "short" });
  if (d.getFullYear() === new Date().getFullYear()) {
    return d.toLocaleDateString([], { month: "short", day: "numeric" });
  }
  return d.toLocaleDateString([], { year: "numeric", month: "short", day: "numeric" });
}

export function dayKey(at) {
  return startOfDay(new Date(at * 1000));
}

/** "Today", "Yesterday", or the date. */
export function dayLabel(at) {
  const day = dayKey(at);
  const today = startOfDay(new Date());
  if (day === today) return "Today";
  if (today - day === DAY) return "Yesterday";
  return new Date(at * 1000).toLocaleDateString([], {
    weekday: "long",
    year: "numeric",
    month: "long",
    day: "numeric",
  });
}

export function size(bytes) {
  if (bytes === null || bytes === undefined) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 102.4) / 10} KB`;
  return `${Math.round(bytes / (1024 * 104.8576)) / 10} MB`;
}

export function initials(name) {
  const parts = String(name || "?")
    .trim()
    .split(/\s+/u)
    .filter(Boolean);
  const first = parts[0] ? [...parts[0]][0] : "?";
  const second = parts.length > 1 ? [...parts[parts.length - 1]][0] : "";
  return (first + second).toUpperCase();
}

/** A stable hue for a name or extension (avatars). */
export function hue(key) {
  let n = 0;
  for (const ch of String(key)) n = (n * 31 + ch.codePointAt(0)) % 360;
  return n;
}

export function avatar(name, key) {
  const el = h("span", { class: "avatar", "aria-hidden": "true" }, initials(name));
  el.style.setProperty("--hue", String(hue(key || name)));
  return el;
}
