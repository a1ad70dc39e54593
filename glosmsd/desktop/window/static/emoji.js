// The emoji picker: a non-modal `dialog` named "Emoji" above the composer. Its catalogue is
// the daemon's `emoji_catalog` (Unicode's emoji groups, names and skin tones, fetched once
// per page); recently used emoji are the daemon's `emoji_recent` / `emoji_used`, shared with
// the quick-send popup. Keyboard: arrows move in the grid, Home/End, Enter picks, Tab goes
// search -> tones -> groups -> grid -> recents, Esc closes and gives focus back.

const TONE_KEY = "glosms.emojiTone";
const RECENT_SHOWN = 16;
// One emoji per group for the group buttons (Unicode's groups have no icon of their own).
const GROUP_ICON = {
  "Smileys & Emotion": "😀",
  "People & Body": "👋",
  "Animals & Nature": "🐻",
  "Food & Drink": "🍔",
  "Travel & Places": "🚗",
  Activities: "⚽",
  Objects: "💡",
  Symbols: "❤️",
  Flags: "🏁",
};

let catalogPromise = null;
let drawableVersion = null;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("aria-") || key === "role" || key === "type" || key === "tabindex") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

/** Whether this browser draws CHARS as one colour glyph (not tofu, not split apart). */
function drawsAsOne(ctx, chars, reference) {
  ctx.clearRect(0, 0, 64, 32);
  ctx.fillText(chars, 0, 26);
  const width = ctx.measureText(chars).width;
  if (width > reference * 1.4) return false; // a ZWJ sequence the font lacks: two pictures
  const pixels = ctx.getImageData(0, 0, 32, 32).data;
  for (let i = 0; i < pixels.length; i += 4) {
    const [r, g, b, a] = [pixels[i], pixels[i + 1], pixels[i + 2], pixels[i + 3]];
    if (a > 0 && (Math.abs(r - g) > 24 || Math.abs(g - b) > 24)) return true; // colour
  }
  return false;
}

/** The newest Emoji version the colour font here draws: later emoji are not offered. */
function newestDrawable(catalog) {
  if (drawableVersion !== null) return drawableVersion;
  const byVersion = new Map();
  for (const group of catalog.groups)
    for (const e of group.emoji) if (!byVersion.has(e.version)) byVersion.set(e.version, e.emoji);
  const versions = [...byVersion.keys()].sort((a, b) => parseFloat(b) - parseFloat(a));
  const canvas = document.createElement("canvas");
  canvas.width = 64;
  canvas.height = 32;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.font = '24px "Noto Color Emoji"';
  ctx.textBaseline = "alphabetic";
  const reference = ctx.measureText("😀").width || 24;
  drawableVersion = Infinity;
  for (const version of versions) {
    if (drawsAsOne(ctx, byVersion.get(version), reference)) {
      drawableVersion = parseFloat(version);
      break;
    }
  }
  return drawableVersion;
}

function loadCatalog(rpc) {
  if (!catalogPromise) {
    catalogPromise = rpc.call("emoji_catalog").catch((err) => {
      catalogPromise = null;
      throw err;
    });
  }
  return catalogPromise;
}

/**
 * Mounts the picker for BUTTON inside HOST. insert(chars) puts a picked emoji in the input.
 * Returns {open(), close(), toggle(), isOpen()}.
 */
export function mountEmoji(button, host, { rpc, insert, announce }) {
  const dialog = el("div", { class: "emo", role: "dialog", "aria-label": "Emoji", hidden: true });
  const search = el("input", {
    class: "emo-search",
    type: "search",
    placeholder: "Search emoji",
    "aria-label": "Search emoji",
    autocomplete: "off",
    spellcheck: false,
  });
  const tones = el("div", { class: "emo-tones", role: "radiogroup", "aria-label": "Skin tone" });
  const groupsNav = el("div", { class: "emo-groups", role: "toolbar", "aria-label": "Emoji groups" });
  const body = el("div", { class: "emo-body", tabindex: "-1" });
  const empty = el("p", { class: "emo-empty", text: "No emoji found.", hidden: true });
  const recentGrid = el("div", { class: "emo-grid emo-recent", role: "group", "aria-label": "Recently used" });
  const recentBox = el(
    "div",
    { class: "emo-recentbox" },
    el("h3", { class: "emo-head", text: "Recently used" }),
    recentGrid,
  );
  dialog.append(el("div", { class: "emo-top" }, search, tones), groupsNav, body, empty, recentBox);
  host.append(dialog);

  let catalog = null;
  let tone = Number(localStorage.getItem(TONE_KEY) || 0);
  let cells = []; // [{button, entry}] of the grid shown
  let sections = [];
  let lastFocus = null;

  const TONE_SAMPLES = ["✋", "✋🏻", "✋🏼", "✋🏽", "✋🏾", "✋🏿"];
  const toneNames = () => ["Default skin tone", ...(catalog ? catalog.tones : [])].map((n, i) =>
    i === 0 ? n : n.charAt(0).toUpperCase() + n.slice(1),
  );

  function shown(entry) {
    return tone > 0 && entry.tones ? entry.tones[tone - 1] : entry.emoji;
  }

  function cell(entry) {
    const b = el("button", { type: "button", class: "emo-cell", tabindex: "-1", "aria-label": entry.name, title: entry.name });
    b.textContent = shown(entry);
    b.dataset.emoji = b.textContent;
    b.addEventListener("click", () => pick(entry, b.textContent));
    return b;
  }

  function renderTones() {
    tones.replaceChildren();
    toneNames().forEach((name, i) => {
      const b = el("button", {
        type: "button",
        class: "emo-tone",
        role: "radio",
        "aria-checked": String(i === tone),
        "aria-label": name,
        title: name,
        tabindex: i === tone ? "0" : "-1",
      });
      b.textContent = TONE_SAMPLES[i];
      b.addEventListener("click", () => setTone(i));
      b.addEventListener("keydown", (ev) => {
        const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[ev.key];
        if (!step) return;
        ev.preventDefault();
        setTone((tone + step + 6) % 6);
        tones.children[tone].focus();
      });
      tones.append(b);
    });
  }

  function setTone(i) {
    tone = i;
    localStorage.setItem(TONE_KEY, String(i));
    renderTones();
    for (const c of cells) {
      if (c.entry && c.entry.tones) {
        c.button.textContent = shown(c.entry);
        c.button.dataset.emoji = c.button.textContent;
      }
    }
  }

  function renderGroups(list) {
    body.replaceChildren();
    sections = [];
    cells = [];
    for (const group of list) {
      const grid = el("div", { class: "emo-grid", role: "group", "aria-label": group.name });
      for (const entry of group.emoji) {
        const b = cell(entry);
        cells.push({ button: b, entry });
        grid.append(b);
      }
      const section = el("section", { class: "emo-section" }, el("h3", { class: "emo-head", text: group.name }), grid);
      sections.push({ name: group.name, section });
      body.append(section);
    }
    empty.hidden = cells.length > 0;
    if (cells.length) cells[0].button.tabIndex = 0;
  }

  function renderNav() {
    groupsNav.replaceChildren();
    for (const group of catalog.groups) {
      const b = el("button", { type: "button", class: "emo-groupbtn", "aria-label": group.name, title: group.name });
      b.textContent = GROUP_ICON[group.name] || group.emoji[0].emoji;
      b.addEventListener("click", () => {
        if (search.value) {
          search.value = "";
          filter();
        }
        const target = sections.find((s) => s.name === group.name);
        if (target) {
          body.scrollTop = target.section.offsetTop;
          const first = target.section.querySelector(".emo-cell");
          if (first) focusCell(first);
        }
      });
      groupsNav.append(b);
    }
  }

  function visibleGroups() {
    const newest = newestDrawable(catalog);
    return catalog.groups.map((g) => ({ name: g.name, emoji: g.emoji.filter((e) => parseFloat(e.version) <= newest) }));
  }

  function filter() {
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) {
      renderGroups(visibleGroups());
      return;
    }
    const found = [];
    for (const g of visibleGroups())
      for (const e of g.emoji) if (words.every((w) => e.name.includes(w))) found.push(e);
    renderGroups(found.length ? [{ name: "Search results", emoji: found }] : []);
    announce(found.length ? `${found.length} emoji found` : "No emoji found");
  }

  async function showRecent(list) {
    recentGrid.replaceChildren();
    const names = new Map();
    if (catalog)
      for (const g of catalog.groups)
        for (const e of g.emoji) {
          names.set(e.emoji, e.name);
          if (e.tones) e.tones.forEach((t, i) => names.set(t, `${e.name}: ${catalog.tones[i]}`));
        }
    for (const chars of list.slice(0, RECENT_SHOWN)) {
      const name = names.get(chars) || chars;
      const b = el("button", { type: "button", class: "emo-cell", tabindex: "-1", "aria-label": name, title: name });
      b.textContent = chars;
      b.dataset.emoji = chars;
      b.addEventListener("click", () => pick({ emoji: chars, name }, chars));
      recentGrid.append(b);
    }
    if (recentGrid.firstChild) recentGrid.firstChild.tabIndex = 0;
    recentBox.hidden = list.length === 0;
  }

  async function pick(entry, chars) {
    insert(chars);
    try {
      showRecent(await rpc.call("emoji_used", { emoji: [chars] }));
    } catch (err) {
      console.error(err);
    }
  }

  function focusCell(b) {
    const grid = b.parentElement;
    for (const other of grid.querySelectorAll(".emo-cell")) other.tabIndex = -1;
    b.tabIndex = 0;
    b.focus();
  }

  function columns(grid) {
    const style = getComputedStyle(grid).gridTemplateColumns;
    return Math.max(1, style.split(" ").filter(Boolean).length);
  }

  // Arrows move through the grid (across groups as one list), Home/End to the ends.
  dialog.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      ev.preventDefault();
      ev.stopPropagation();
      close(true);
      return;
    }
    const target = ev.target;
    if (!(target instanceof HTMLElement) || !target.classList.contains("emo-cell")) {
      if (target === search && ev.key === "ArrowDown" && cells.length) {
        ev.preventDefault();
        focusCell(cells[0].button);
      }
      return;
    }
    const inRecent = target.parentElement === recentGrid;
    const list = inRecent ? [...recentGrid.children] : cells.map((c) => c.button);
    const at = list.indexOf(target);
    const cols = columns(target.parentElement);
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: cols, ArrowUp: -cols, Home: -at, End: list.length - 1 - at };
    if (!(ev.key in moves)) return;
    ev.preventDefault();
    const next = list[Math.min(list.length - 1, Math.max(0, at + moves[ev.key]))];
    if (next) {
      focusCell(next);
      next.scrollIntoView({ block: "nearest" });
    }
  });

  search.addEventListener("input", filter);

  function onOutside(ev) {
    if (!dialog.contains(ev.target) && !button.contains(ev.target)) close(false);
  }

  async function open() {
    if (!dialog.hidden) return;
    lastFocus = document.activeElement;
    dialog.hidden = false;
    button.setAttribute("aria-expanded", "true");
    document.addEventListener("pointerdown", onOutside, true);
    if (!catalog) {
      body.replaceChildren(el("p", { class: "emo-empty", text: "Loading emoji…" }));
      try {
        catalog = await loadCatalog(rpc);
      } catch (err) {
        body.replaceChildren(el("p", { class: "emo-empty", text: `The emoji could not be loaded: ${err.message}` }));
        return;
      }
      renderTones();
      renderNav();
      renderGroups(visibleGroups());
    }
    search.focus();
    try {
      showRecent(await rpc.call("emoji_recent", { limit: RECENT_SHOWN }));
    } catch (err) {
      console.error(err);
    }
  }

  function close(giveFocusBack) {
    if (dialog.hidden) return;
    dialog.hidden = true;
    button.setAttribute("aria-expanded", "false");
    document.removeEventListener("pointerdown", onOutside, true);
    if (giveFocusBack) (lastFocus && lastFocus.isConnected ? lastFocus : button).focus();
  }

  button.addEventListener("click", () => (dialog.hidden ? open() : close(true)));
  return { open, close: (giveFocusBack = true) => close(giveFocusBack), isOpen: () => !dialog.hidden };
}
