// Small DOM helpers shared by the console's pages. Everything is built with DOM
// calls (text goes in as text, never as HTML), and nothing sets a style attribute.

/** `document.getElementById`, failing loudly when a page lacks the element. */
export function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from the page`);
  return el;
}

/** An element: `h("td", {class: "num"}, "12.5")`; children are nodes or text. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const SVG = "http://www.w3.org/2000/svg";

/** An icon from the sprite (`img/icons.svg`). */
export function icon(id) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "icon");
  svg.setAttribute("aria-hidden", "true");
  const use = document.createElementNS(SVG, "use");
  use.setAttribute("href", `/assets/img/icons.svg#${id}`);
  svg.append(use);
  return svg;
}

/**
 * Shows a message in a live region (`role="alert"` or `aria-live`), replacing what
 * was there; `kind` is error, success, info or warning. `extra` nodes (a button)
 * follow the text. An empty text clears it.
 */
export function say(region, kind, text, ...extra) {
  region.replaceChildren();
  region.className = `alert alert-${kind}`;
  if (!text) return;
  const ids = { error: "i-alert", success: "i-check", info: "i-alert", warning: "i-alert" };
  const body = h("div", {}, h("p", {}, text));
  if (extra.length) body.append(h("div", { class: "alert-actions" }, ...extra));
  region.append(icon(ids[kind] || "i-alert"), body);
}

/**
 * Checks a new password typed twice (inputs `passwordId` and `confirmId`) as the
 * server will: at least 8 characters, and the two the same. The password, or null
 * after telling what is wrong in `region` and putting the cursor there.
 */
export function newPassword(region, passwordId, confirmId) {
  const password = $(passwordId).value;
  if (password.length < 8) {
    say(region, "error", "Choose a password of at least 8 characters.");
    $(passwordId).focus();
    return null;
  }
  if (password !== $(confirmId).value) {
    say(region, "error", "The passwords do not match.");
    $(confirmId).select();
    return null;
  }
  return password;
}

/** Clears a message region. */
export function clear(region) {
  region.replaceChildren();
  region.className = "alert";
}

/** Marks a button busy (and disabled) while `work` runs. */
export async function busy(button, work) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

// Made once: `toLocaleString` with options builds a new formatter on every call,
// which shows on pages that format hundreds of times.
const WHEN = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

/** A date and time in the reader's locale, or "—". */
export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "—";
  return WHEN.format(d);
}

/** A date in the reader's locale, or "—". */
export function day(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "—";
  return d.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

/** "3 minutes ago"-style text for a past time. */
export function ago(iso) {
  if (!iso) return "never";
  const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (!Number.isFinite(seconds)) return "—";
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  const steps = [
    [60, "second"],
    [60, "minute"],
    [24, "hour"],
    [30, "day"],
    [12, "month"],
  ];
  let value = -seconds;
  for (const [size, unit] of steps) {
    if (Math.abs(value) < size) return rtf.format(Math.round(value), unit);
    value /= size;
  }
  return rtf.format(Math.round(value), "year");
}

/** A money amount (the API's exact decimal string) with grouping, 2 decimals. */
export function money(text) {
  if (text === null || text === undefined || text === "") return "—";
  const n = Number(text);
  if (!Number.isFinite(n)) return String(text);
  return n.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

/** A percentage with its sign, or "—". */
export function percent(value) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return "—";
  const n = Number(value);
  return (n > 0 ? "+" : "") + n.toFixed(2) + "%";
}

/** Copies `text`, then says so on the button for a moment. */
export async function copy(button, text) {
  const label = button.querySelector("span") || button;
  const before = label.textContent;
  try {
    await navigator.clipboard.writeText(text);
    label.textContent = "Copied";
  } catch {
    label.textContent = "Select and copy";
  }
  setTimeout(() => {
    label.textContent = before;
  }, 1600);
}

/** A copy button for `text`. */
export function copyButton(text, label = "Copy") {
  const button = h("button", { type: "button", class: "btn btn-sm" }, icon("i-copy"), h("span", {}, label));
  button.addEventListener("click", () => copy(button, typeof text === "function" ? text() : text));
  return button;
}

/**
 * Asks for confirmation in a modal dialog; resolves true when confirmed. The dialog
 * has `data-confirm` on its confirm button for keyboard and test use alike.
 */
export function confirmAction({ title, text, confirm = "Confirm", danger = true }) {
  return new Promise((resolve) => {
    const yes = h("button", { type: "button", class: danger ? "btn btn-danger-solid" : "btn btn-primary", "data-confirm": true }, confirm);
    const no = h("button", { type: "button", class: "btn" }, "Cancel");
    const dialog = h(
      "dialog",
      { "aria-labelledby": "dialog-title" },
      h("div", { class: "dialog-body" }, h("h2", { id: "dialog-title" }, title), h("p", { class: "muted" }, text)),
      h("div", { class: "dialog-actions" }, no, yes),
    );
    const done = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    yes.addEventListener("click", () => done(true));
    no.addEventListener("click", () => done(false));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      done(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  });
}

/** The message to show for an API error, with the usual cases spelled out. */
export function describe(error) {
  if (!error || typeof error !== "object") return "Something went wrong. Try again.";
  if (error.status === 0) return error.message;
  if (error.status === 503 || error.status === 502 || error.status === 504) {
    return "The server is unavailable right now. Try again in a moment.";
  }
  if (error.status === 429) {
    const wait = error.retryAfter;
    return wait ? `Too many requests. Try again in ${waitText(wait)}.` : "Too many requests. Try again shortly.";
  }
  return error.message || "Something went wrong. Try again.";
}

/** "42 seconds", "3 minutes". */
export function waitText(seconds) {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? "" : "s"}`;
}

/** Session states in which a session is still running (or can run). */
export const LIVE_STATES = new Set(["ready", "running", "paused"]);

/** A session state as a badge. */
export function stateBadge(state) {
  const kind = { running: "badge-info", ready: "badge-info", paused: "badge-warning", completed: "badge-success", error: "badge-danger" }[state];
  return h("span", { class: `badge ${kind || ""}` }, state);
}
