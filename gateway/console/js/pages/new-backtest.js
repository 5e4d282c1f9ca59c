// New backtest: a form generated from the data catalog (GET /api/market-data) and
// the built-in strategies (GET /api/strategies); submitting runs the strategy on the
// server (POST /api/backtests), then follows it (GET /api/backtests/{id}) with a
// Cancel button until it ends, and opens its results. The run being followed is in
// the URL (`?run=<id>`), so a reload picks it up again.

import { ApiError, get, post } from "../api.js";
import { shell } from "../shell.js";
import { $, busy, clear, describe, h, say, waitText } from "../ui.js";

const POLL_MS = 400;
const LIVE = new Set(["queued", "running"]);
const SECONDS = { "1min": 60, "5min": 300, "15min": 900, "30min": 1800, "1h": 3600, "2h": 7200, "4h": 14400, daily: 86400 };
const TIMEFRAME_LABEL = {
  "1min": "1 minute",
  "5min": "5 minutes",
  "15min": "15 minutes",
  "30min": "30 minutes",
  "1h": "1 hour",
  "2h": "2 hours",
  "4h": "4 hours",
  daily: "Daily",
};

const form = $("backtest-form");
const message = $("backtest-message");
let providers = [];
let strategies = [];
let following = null;
let timer = null;

// ---- The data catalog ------------------------------------------------------------

function provider() {
  return providers.find((p) => p.name === $("bt-provider").value) || null;
}

/** The first and last bar (YYYY-MM-DD) of `symbol` at `timeframe`, from the series
 * stored at that timeframe or finer (what the server builds it from). */
function span(symbol, timeframe) {
  if (!symbol.servable.includes(timeframe)) return null;
  const usable = symbol.stored.filter((s) => (SECONDS[s.timeframe] || 0) <= (SECONDS[timeframe] || 0));
  if (!usable.length) return null;
  const first = usable.map((s) => s.first.slice(0, 10)).sort()[0];
  const last = usable.map((s) => s.last.slice(0, 10)).sort().at(-1);
  return { first, last };
}

function checkedSymbols() {
  return [...form.querySelectorAll("input[name=symbols]:checked")].map((box) => box.value);
}

function fillProviders() {
  const select = $("bt-provider");
  select.replaceChildren(
    ...providers.map((p) => h("option", { value: p.name, selected: p.default }, p.default ? `${p.name} (default)` : p.name)),
  );
  select.disabled = providers.length === 0;
}

function fillTimeframes() {
  const p = provider();
  const select = $("bt-timeframe");
  const before = select.value;
  const offered = new Set((p ? p.symbols : []).flatMap((s) => s.servable));
  const ordered = Object.keys(SECONDS).filter((t) => offered.has(t));
  select.replaceChildren(...ordered.map((t) => h("option", { value: t }, TIMEFRAME_LABEL[t] || t)));
  if (ordered.includes(before)) select.value = before;
  else if (ordered.includes("daily")) select.value = "daily";
  select.disabled = ordered.length === 0;
}

function fillSymbols() {
  const p = provider();
  const list = $("bt-symbols");
  const keep = new Set(checkedSymbols());
  list.replaceChildren(
    ...(p ? p.symbols : []).map((s) => {
      const id = `bt-symbol-${s.symbol.replace(/[^A-Za-z0-9_-]/g, "_")}`;
      return h(
        "div",
        { class: "choice" },
        h("input", { type: "checkbox", id, name: "symbols", value: s.symbol, checked: keep.has(s.symbol) }),
        h("label", { for: id }, s.symbol, h("span", { class: "choice-note" })),
      );
    }),
  );
  updateSymbols();
}

/** Disables the symbols without data at the chosen timeframe, notes each one's span. */
function updateSymbols() {
  const p = provider();
  const timeframe = $("bt-timeframe").value;
  for (const s of p ? p.symbols : []) {
    const box = form.querySelector(`input[name=symbols][value="${CSS.escape(s.symbol)}"]`);
    if (!box) continue;
    const range = span(s, timeframe);
    box.disabled = !range;
    if (!range) box.checked = false;
    const note = box.parentElement.querySelector(".choice-note");
    note.textContent = range ? ` ${range.first} to ${range.last}` : " not at this timeframe";
  }
  updateDates();
}

/** Bounds the date inputs by the chosen symbols' data (all of them hold data in the
 * range); dates the user has not changed follow the whole range. */
function updateDates() {
  const p = provider();
  const timeframe = $("bt-timeframe").value;
  const chosen = new Set(checkedSymbols());
  const spans = (p ? p.symbols : [])
    .filter((s) => chosen.size === 0 || chosen.has(s.symbol))
    .map((s) => span(s, timeframe))
    .filter(Boolean);
  const start = $("bt-start");
  const end = $("bt-end");
  if (!spans.length) {
    for (const input of [start, end]) {
      input.removeAttribute("min");
      input.removeAttribute("max");
    }
    $("bt-range").textContent = "No data at this timeframe.";
    return;
  }
  const min = chosen.size ? spans.map((s) => s.first).sort().at(-1) : spans.map((s) => s.first).sort()[0];
  const max = chosen.size ? spans.map((s) => s.last).sort()[0] : spans.map((s) => s.last).sort().at(-1);
  if (min > max) {
    $("bt-range").textContent = "The chosen symbols have no dates in common at this timeframe.";
    return;
  }
  for (const input of [start, end]) {
    input.min = min;
    input.max = max;
  }
  if (!start.dataset.touched || !start.value || start.value < min || start.value > max) start.value = min;
  if (!end.dataset.touched || !end.value || end.value > max || end.value < min) end.value = max;
  $("bt-range").textContent = chosen.size
    ? `Data for ${chosen.size === 1 ? "this symbol" : "all of these symbols"} from ${min} to ${max}.`
    : `Data from ${min} to ${max}.`;
}

// ---- The strategies ----------------------------------------------------------------

function strategy() {
  return strategies.find((s) => s.id === $("bt-strategy").value) || null;
}

function decimals(value) {
  const text = String(value);
  const dot = text.indexOf(".");
  return dot < 0 ? 0 : text.length - dot - 1;
}

function fillStrategies() {
  const select = $("bt-strategy");
  select.replaceChildren(...strategies.map((s) => h("option", { value: s.id }, s.name)));
  const sma = strategies.find((s) => s.id === "sma_crossover");
  if (sma) select.value = sma.id;
  select.disabled = strategies.length === 0;
  fillParams();
}

function fillParams() {
  const s = strategy();
  $("bt-strategy-about").textContent = s ? s.description : "";
  $("bt-params").replaceChildren(
    ...(s ? s.params : []).map((p) => {
      const id = `bt-param-${p.name}`;
      const places = Math.max(decimals(p.default), decimals(p.min), decimals(p.max));
      const step = p.type === "integer" ? "1" : places ? `0.${"0".repeat(places - 1)}1` : "any";
      return h(
        "div",
        { class: "field" },
        h("label", { for: id }, p.label),
        h("input", {
          id,
          type: "number",
          name: `param.${p.name}`,
          value: String(p.default),
          min: String(p.min),
          max: String(p.max),
          step,
          required: true,
          inputmode: p.type === "integer" ? "numeric" : "decimal",
          "aria-describedby": `${id}-hint`,
          dataset: { type: p.type, label: p.label },
        }),
        h("p", { class: "hint", id: `${id}-hint` }, `${p.description} From ${p.min} to ${p.max}.`),
      );
    }),
  );
}

// ---- Reading and checking the form -------------------------------------------------

/** The day after `date` (YYYY-MM-DD): the API's end is exclusive, the form's inclusive. */
function dayAfter(date) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

const DECIMAL = /^\d+(\.\d+)?$/;

/** Points at the field that is wrong and says why; returns null. */
function wrong(input, text) {
  say(message, "error", text);
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
  return null;
}

/** The request body, or null after saying what is wrong. */
function request() {
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const s = strategy();
  if (!s) return wrong($("bt-strategy"), "Choose a strategy.");
  const symbols = checkedSymbols();
  if (!symbols.length) {
    const first = form.querySelector("input[name=symbols]:not(:disabled)");
    return wrong(first, "Choose at least one symbol.");
  }
  const start = $("bt-start");
  const end = $("bt-end");
  if (!start.value) return wrong(start, "Choose a start date.");
  if (!end.value) return wrong(end, "Choose an end date.");
  if (start.value > end.value) return wrong(start, "The start date must be on or before the end date.");
  if (start.min && (start.value < start.min || start.value > start.max)) {
    return wrong(start, `The start date must be between ${start.min} and ${start.max}, where there is data.`);
  }
  if (end.min && (end.value < end.min || end.value > end.max)) {
    return wrong(end, `The end date must be between ${end.min} and ${end.max}, where there is data.`);
  }
  const capital = $("bt-capital");
  const capitalText = capital.value.trim();
  if (!DECIMAL.test(capitalText) || Number(capitalText) <= 0) {
    return wrong(capital, "Enter the initial capital as a positive amount, e.g. 100000.");
  }
  const body = {
    strategy: s.id,
    params: {},
    symbols,
    start_date: start.value,
    end_date: dayAfter(end.value),
    initial_capital: capitalText,
    timeframe: $("bt-timeframe").value,
  };
  if ($("bt-provider").value) body.data_provider = $("bt-provider").value;
  const commission = $("bt-commission");
  const commissionText = commission.value.trim();
  if (commissionText || commission.validity.badInput) {
    if (!DECIMAL.test(commissionText)) return wrong(commission, "Enter the commission per share as an amount of 0 or more, or leave it empty for the server default.");
    body.commission_per_share = commissionText;
  }
  const slippage = $("bt-slippage");
  const slippageText = slippage.value.trim();
  if (slippageText || slippage.validity.badInput) {
    if (!/^\d+$/.test(slippageText)) return wrong(slippage, "Enter the slippage as a whole number of basis points, or leave it empty for the server default.");
    body.slippage_bps = Number(slippageText);
  }
  for (const input of $("bt-params").querySelectorAll("input")) {
    const name = input.name.slice("param.".length);
    const label = input.dataset.label;
    const text = input.value.trim();
    const integer = input.dataset.type === "integer";
    if (integer ? !/^-?\d+$/.test(text) : !/^-?\d+(\.\d+)?$/.test(text)) {
      return wrong(input, `${label}: enter ${integer ? "a whole number" : "a number"} from ${input.min} to ${input.max}.`);
    }
    if (Number(text) < Number(input.min) || Number(text) > Number(input.max)) {
      return wrong(input, `${label} must be from ${input.min} to ${input.max}.`);
    }
    body.params[name] = integer ? Number(text) : text;
  }
  return body;
}

/** What to say about a refused run. */
function refusal(error) {
  if (error instanceof ApiError && error.status === 429 && error.limitType === "sessions") {
    const wait = error.retryAfter ? ` Try again in ${waitText(error.retryAfter)}.` : "";
    return `Your plan's limit on sessions running at once is reached: ${error.message} Wait for a run to end, or stop one from the dashboard.${wait}`;
  }
  if (error instanceof ApiError && error.status === 429) {
    const wait = error.retryAfter ? `Try again in ${waitText(error.retryAfter)}.` : "Try again shortly.";
    return `Too many requests (${error.limitType || "rate limit"}): ${error.message} ${wait}`;
  }
  if (error instanceof ApiError && error.status === 400) return `The server refused this backtest: ${error.message}`;
  return `The backtest could not be started. ${describe(error)}`;
}

// ---- Following a run ---------------------------------------------------------------

function setRunParam(id) {
  const url = new URL(location.href);
  if (id) url.searchParams.set("run", id);
  else url.searchParams.delete("run");
  history.replaceState(null, "", url.pathname + url.search + url.hash);
}

function running(on) {
  $("backtest-run").hidden = !on;
  $("backtest-submit").disabled = on || !strategies.length || !providers.length;
  $("backtest-cancel").disabled = false;
}

function show(status) {
  const state = status.state;
  const badge = $("run-state");
  badge.textContent = status.cancel_requested && LIVE.has(state) ? "cancelling" : state;
  badge.className = `badge ${state === "running" ? "badge-info" : state === "queued" ? "badge-plain" : "badge-warning"}`;
  const pct = Math.max(0, Math.min(100, Number(status.progress_pct) || 0));
  $("run-progress").value = pct;
  $("run-detail").textContent =
    state === "queued"
      ? "Waiting for a worker…"
      : `${pct.toFixed(1)}% · ${Number(status.ticks_processed).toLocaleString()} of ${Number(status.ticks_total).toLocaleString()} bars`;
}

function ended(status) {
  clearTimeout(timer);
  following = null;
  setRunParam(null);
  running(false);
  const bars = `${Number(status.ticks_processed).toLocaleString()} of ${Number(status.ticks_total).toLocaleString()} bars`;
  const results = h("a", { class: "btn btn-sm", href: `/results/${encodeURIComponent(status.session_id)}` }, "Open the results so far");
  if (status.state === "stopped") {
    say(message, "warning", `Backtest ${status.session_id} was cancelled after ${bars}.`, results);
  } else if (status.state === "max_duration") {
    say(message, "warning", `Backtest ${status.session_id} ran into your plan's time limit for a run after ${bars}.`, results);
  } else {
    say(message, "error", `Backtest ${status.session_id} failed after ${bars}. Check the data and the parameters and try again.`);
  }
}

async function poll() {
  const id = following;
  if (!id) return;
  try {
    const status = await get(`/api/backtests/${encodeURIComponent(id)}`);
    if (following !== id) return;
    show(status);
    if (status.state === "completed") {
      location.assign(`/results/${encodeURIComponent(id)}`);
      return;
    }
    if (!LIVE.has(status.state)) {
      ended(status);
      return;
    }
    timer = setTimeout(poll, POLL_MS);
  } catch (error) {
    if (following !== id) return;
    if (error instanceof ApiError && error.status === 404) {
      following = null;
      setRunParam(null);
      running(false);
      say(message, "error", `There is no backtest ${id} of yours to follow.`);
      return;
    }
    say(message, "error", `Could not follow the backtest. ${describe(error)} Retrying…`);
    timer = setTimeout(poll, POLL_MS * 5);
  }
}

function follow(id) {
  clearTimeout(timer);
  following = id;
  setRunParam(id);
  $("run-id").textContent = id;
  $("run-progress").value = 0;
  $("run-state").textContent = "queued";
  $("run-detail").textContent = "Waiting for a worker…";
  running(true);
  poll();
}

async function cancel() {
  const id = following;
  if (!id) return;
  await busy($("backtest-cancel"), async () => {
    try {
      show(await post(`/api/backtests/${encodeURIComponent(id)}/cancel`));
    } catch (error) {
      // 409: it ended meanwhile; the next poll shows how.
      if (!(error instanceof ApiError && error.status === 409)) {
        say(message, "error", `Could not cancel the backtest. ${describe(error)}`);
      }
    }
  });
  $("backtest-cancel").disabled = true;
}

async function submit(event) {
  event.preventDefault();
  if (following) return;
  clear(message);
  const body = request();
  if (!body) return;
  await busy($("backtest-submit"), async () => {
    try {
      const status = await post("/api/backtests", body);
      follow(status.session_id);
    } catch (error) {
      say(message, "error", refusal(error));
    }
  });
  running(Boolean(following));
}

// ---- Start -------------------------------------------------------------------------

async function loadCatalog() {
  try {
    ({ providers } = await get("/api/market-data"));
    clear($("catalog-message"));
  } catch (error) {
    providers = [];
    say($("catalog-message"), "error", `Could not load the data catalog. ${describe(error)}`);
  }
  fillProviders();
  fillTimeframes();
  fillSymbols();
}

async function loadStrategies() {
  try {
    ({ strategies } = await get("/api/strategies"));
    clear($("strategies-message"));
  } catch (error) {
    strategies = [];
    say($("strategies-message"), "error", `Could not load the strategies. ${describe(error)}`);
  }
  fillStrategies();
}

$("bt-provider").addEventListener("change", () => {
  fillTimeframes();
  fillSymbols();
});
$("bt-timeframe").addEventListener("change", updateSymbols);
$("bt-symbols").addEventListener("change", updateDates);
for (const id of ["bt-start", "bt-end"]) {
  $(id).addEventListener("change", () => {
    $(id).dataset.touched = "1";
  });
}
$("bt-strategy").addEventListener("change", fillParams);
$("backtest-cancel").addEventListener("click", cancel);
form.addEventListener("submit", submit);

shell().then(
  async () => {
    await Promise.all([loadCatalog(), loadStrategies()]);
    form.dataset.ready = "1";
    running(false);
    const run = new URL(location.href).searchParams.get("run");
    if (run) follow(run);
  },
  (error) => say($("flash"), "error", describe(error)),
);
