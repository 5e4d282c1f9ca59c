// The results of one session, however it was run (a server-side backtest or a client
// over the WebSocket): GET /api/sessions/{id} once, then the candles of each symbol
// from GET /api/market-data/{provider}/{symbol}/bars, downsampled on the server to
// about the chart's width. A live session is followed until it ends.
//
// Hooks for scripts: each key figure's value carries data-metric="<simulation_end
// field>" with the field's exact wire text; each trades-table row carries data-trade;
// the charts' containers carry data-chart ("equity", "drawdown", "candles" once per
// symbol with data-symbol, "trade-returns", "monthly", "yearly"); the root (#results)
// gets data-rendered="true" when everything is drawn (and the performance timeline
// a "results-rendered" mark).

import { api, get } from "../api.js";
import { chart, lc } from "../charts.js";
import { shell } from "../shell.js";
import { $, LIVE_STATES, clear, copyButton, describe, h, money, say, stateBadge, when } from "../ui.js";

const POLL_MS = 2000;
const TRADES_PER_PAGE = 100;
const COLORS = {
  equity: "#2947d6",
  hold: "#98a2b3",
  up: "#12b76a",
  down: "#f04438",
  drawdown: "#f04438",
  volume: "rgba(102, 112, 133, 0.35)",
};

const sessionId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const root = $("results");
const message = $("results-message");

// ---------------------------------------------------------------------------
// Reading the session, numbers kept as the server wrote them.

/**
 * GET /api/sessions/{id}, with the source text of each key figure kept beside its
 * parsed value (`raw(metrics, field)`), so it shows exactly what the server sent
 * (`100.0`, not `100`). Only the `metrics` object (flat, one per answer) is parsed a
 * second time for that: a reviver over the whole answer (tens of thousands of trades)
 * would cost more than everything else on the page. Browsers without JSON.parse
 * source access fall back to the number's own text.
 */
async function loadSession() {
  const sources = new Map();
  const parse = (text) => {
    const data = JSON.parse(text);
    const metrics = data && data.metrics;
    if (!metrics) return data;
    // The first flat "metrics" object whose numbers are those parsed (a run's own
    // metadata might hold one too).
    for (const match of text.matchAll(/"metrics":(\{[^{}]*\})/g)) {
      const found = new Map();
      const object = JSON.parse(match[1], (key, value, context) => {
        if (typeof value === "number" && context && typeof context.source === "string") found.set(key, context.source);
        return value;
      });
      const same = Object.keys(metrics).every((key) => Object.is(object[key], metrics[key]));
      if (same && Object.keys(object).length === Object.keys(metrics).length) {
        found.forEach((source, key) => sources.set(key, source));
        break;
      }
    }
    return data;
  };
  const detail = await api("GET", `/api/sessions/${encodeURIComponent(sessionId)}`, undefined, { parse });
  const raw = (metrics, key) => {
    const value = metrics[key];
    if (value === null || value === undefined) return null;
    if (typeof value === "number") return sources.get(key) ?? String(value);
    return String(value);
  };
  return { detail, raw };
}

// ---------------------------------------------------------------------------
// Formatting.

const isNum = (v) => v !== null && v !== undefined && v !== "" && Number.isFinite(Number(v));
const fixed = (v, places = 2) => (isNum(v) ? Number(v).toLocaleString(undefined, { minimumFractionDigits: places, maximumFractionDigits: places }) : "—");
const signed = (v, places = 2) => (isNum(v) ? (Number(v) > 0 ? "+" : "") + fixed(v, places) : "—");
const pct = (v) => (isNum(v) ? `${signed(v)}%` : "—");
const tone = (v) => (!isNum(v) || Number(v) === 0 ? "" : Number(v) > 0 ? "pos" : "neg");
const seconds = (iso) => Math.floor(new Date(iso).getTime() / 1000);
/** `2004-01-01` for a midnight UTC time, the time as sent otherwise. */
const dateText = (iso) => String(iso).replace(/T00:00:00(\.0+)?Z$/, "");

/**
 * The key figures: the simulation_end field, its label, how it is shown and whether
 * its sign is good news. `format` gets the parsed value and the metrics.
 */
const FIGURES = [
  ["final_equity", "Final equity", (v) => money(v)],
  ["total_return_pct", "Return", pct, true],
  ["buy_and_hold_return_pct", "Buy and hold", pct, true],
  ["cagr_pct", "CAGR", pct, true],
  ["volatility_ann_pct", "Volatility (ann.)", (v) => (isNum(v) ? `${fixed(v)}%` : "—")],
  ["sharpe_ratio", "Sharpe", (v) => fixed(v)],
  ["sortino_ratio", "Sortino", (v) => fixed(v)],
  ["calmar_ratio", "Calmar", (v) => fixed(v)],
  ["max_drawdown_pct", "Max drawdown", (v) => (isNum(v) ? `${fixed(v)}%` : "—")],
  ["max_drawdown_duration_bars", "Longest drawdown", (v) => (isNum(v) ? `${Number(v).toLocaleString()} bars` : "—")],
  ["win_rate", "Win rate", (v) => (isNum(v) ? `${fixed(100 * Number(v), 1)}%` : "—")],
  ["profit_factor", "Profit factor", (v) => (isNum(v) ? fixed(v) : "∞ (no losses)")],
  ["avg_trade_pct", "Expectancy", pct, true],
  ["best_trade_pct", "Best trade", pct, true],
  ["worst_trade_pct", "Worst trade", pct, true],
  ["total_trades", "Trades", (v) => Number(v).toLocaleString()],
  ["exposure_pct", "Exposure", (v) => (isNum(v) ? `${fixed(v, 1)}%` : "—")],
  ["total_commission", "Commission", (v) => money(v)],
  ["ticks_processed", "Bars", (v) => Number(v).toLocaleString()],
  ["reason", "Ended", (v) => String(v)],
];

function figures(metrics, raw) {
  const list = $("metrics");
  list.replaceChildren(
    ...FIGURES.filter(([field]) => field in metrics).map(([field, label, format, signedGood]) => {
      const value = metrics[field];
      const exact = raw(metrics, field) ?? "null";
      const shown = value === null && field !== "profit_factor" ? "—" : format(value, metrics);
      const item = h(
        "div",
        { class: "metric" },
        h("dt", {}, label),
        h("dd", { class: `metric-value ${signedGood ? tone(value) : ""}` }, shown),
      );
      // The exact wire text, for scripts and for copying; shown small when the
      // formatted figure differs from it.
      const hook = h("dd", { class: "metric-exact mono", "data-metric": field, title: "Exact value" }, exact);
      if (shown === exact) hook.classList.add("sr-only");
      item.append(hook);
      return item;
    }),
  );
  $("panel-metrics").hidden = false;
}

// ---------------------------------------------------------------------------
// Charts.

function equityChart(curve, withHold) {
  const box = $("chart-equity");
  const c = chart(box, { rightPriceScale: { mode: lc.PriceScaleMode.Normal } });
  const equity = c.addSeries(lc.LineSeries, { color: COLORS.equity, lineWidth: 2, priceLineVisible: false, title: "Strategy" });
  const hold = c.addSeries(lc.LineSeries, { color: COLORS.hold, lineWidth: 1.5, lineStyle: lc.LineStyle.Dashed, priceLineVisible: false, title: "Buy and hold" });
  equity.setData(curve.map((p) => ({ time: seconds(p.time), value: Number(p.equity) })));
  if (withHold) hold.setData(curve.map((p) => ({ time: seconds(p.time), value: Number(p.buy_and_hold) })));
  c.timeScale().fitContent();
  const toggle = $("equity-log");
  toggle.addEventListener("change", () => {
    c.priceScale("right").applyOptions({ mode: toggle.checked ? lc.PriceScaleMode.Logarithmic : lc.PriceScaleMode.Normal });
  });
  $("panel-equity").hidden = false;
}

function drawdownChart(curve) {
  const c = chart($("chart-drawdown"), { localization: { priceFormatter: (v) => `${v.toFixed(2)}%` } });
  const area = c.addSeries(lc.AreaSeries, {
    lineColor: COLORS.drawdown,
    topColor: "rgba(240, 68, 56, 0.05)",
    bottomColor: "rgba(240, 68, 56, 0.35)",
    invertFilledArea: true,
    lineWidth: 1.5,
    priceLineVisible: false,
  });
  area.setData(curve.map((p) => ({ time: seconds(p.time), value: -Number(p.drawdown_pct) })));
  c.timeScale().fitContent();
  $("panel-drawdown").hidden = false;
}

/** The time of the last bar at or before `t` (markers sit on the bars drawn). */
function snap(times, t) {
  let lo = 0;
  let hi = times.length - 1;
  if (hi < 0 || t < times[0]) return null;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (times[mid] <= t) lo = mid;
    else hi = mid - 1;
  }
  return times[lo];
}

/** The bars of `symbol` for its chart: about 1.5 per pixel of `width`, merged on the server. */
async function loadBars(symbol, params, width) {
  const query = new URLSearchParams({ timeframe: params.timeframe, max_points: String(Math.max(200, Math.min(4000, Math.round(width * 1.5)))) });
  if (params.start_date) query.set("start", params.start_date);
  if (params.end_date) query.set("end", params.end_date);
  const provider = params.data_provider || (await defaultProvider());
  return get(`/api/market-data/${encodeURIComponent(provider)}/${encodeURIComponent(symbol)}/bars?${query}`);
}

async function candleChart(symbol, params, trades, bars) {
  const box = h("div", { class: "chart-box chart-tall", dataset: { chart: "candles", symbol } });
  const title = h("h3", { class: "panel-sub" }, symbol);
  const note = h("p", { class: "small muted" });
  $("candles").append(h("div", { class: "symbol-chart" }, title, note, box));
  const data = await bars;
  note.textContent =
    data.bucket_bars > 1
      ? `${data.bars_in_range.toLocaleString()} ${params.timeframe} bars, drawn as ${data.bars.length.toLocaleString()} (${data.bucket_bars} bars each).`
      : `${data.bars_in_range.toLocaleString()} ${params.timeframe} bars.`;
  const c = chart(box);
  const candles = c.addSeries(lc.CandlestickSeries, {
    upColor: COLORS.up,
    downColor: COLORS.down,
    borderVisible: false,
    wickUpColor: COLORS.up,
    wickDownColor: COLORS.down,
    priceLineVisible: false,
  });
  const times = data.bars.map((b) => seconds(b.date));
  candles.setData(data.bars.map((b, i) => ({ time: times[i], open: Number(b.open), high: Number(b.high), low: Number(b.low), close: Number(b.close) })));
  const volume = c.addSeries(lc.HistogramSeries, { color: COLORS.volume, priceFormat: { type: "volume" }, priceScaleId: "volume", priceLineVisible: false, lastValueVisible: false });
  c.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  volume.setData(data.bars.map((b, i) => ({ time: times[i], value: Number(b.volume) })));
  const markers = [];
  for (const t of trades) {
    if (t.symbol !== symbol) continue;
    const long = t.side === "long";
    const entry = snap(times, seconds(t.entry_time));
    const exit = snap(times, seconds(t.exit_time));
    if (entry !== null) markers.push({ time: entry, position: long ? "belowBar" : "aboveBar", shape: long ? "arrowUp" : "arrowDown", color: COLORS.equity, text: long ? "Buy" : "Sell" });
    if (exit !== null) markers.push({ time: exit, position: long ? "aboveBar" : "belowBar", shape: long ? "arrowDown" : "arrowUp", color: Number(t.pnl) >= 0 ? COLORS.up : COLORS.down, text: long ? "Sell" : "Cover" });
  }
  lc.createSeriesMarkers(candles, fitMarkers(markers, times.length));
  c.timeScale().fitContent();
}

/**
 * The markers to draw, in time order: all of them while there are fewer than bars
 * drawn, else one of each kind per bar (many trades fall in one merged bar of a long
 * run, and tens of thousands of markers would take longer to lay out than the rest
 * of the page). Labels only while they fit; arrows and colours tell entries from
 * exits anyway.
 */
function fitMarkers(markers, bars) {
  let out = markers;
  if (markers.length > bars) {
    const seen = new Set();
    out = markers.filter((m) => {
      const key = `${m.time}|${m.shape}|${m.color}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  }
  if (out.length > 40) out = out.map(({ text, ...m }) => m);
  return out.sort((a, b) => a.time - b.time);
}

let catalogProvider = null;
async function defaultProvider() {
  if (!catalogProvider) {
    catalogProvider = get("/api/market-data").then(({ providers }) => (providers.find((p) => p.default) || providers[0] || {}).name);
  }
  return catalogProvider;
}

/** Per-trade returns as a histogram on a plain canvas (the chart library has no x axis of values). */
function histogram(box, values) {
  const canvas = h("canvas", { role: "img", "aria-label": `Histogram of ${values.length} trade returns` });
  box.append(canvas);
  const draw = () => {
    const ratio = window.devicePixelRatio || 1;
    const width = box.clientWidth;
    const height = box.clientHeight;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
    const g = canvas.getContext("2d");
    g.scale(ratio, ratio);
    g.fillStyle = "#ffffff";
    g.fillRect(0, 0, width, height);
    if (!values.length) return;
    let lo = 0;
    let hi = 0;
    for (const v of values) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const bins = Math.max(5, Math.min(40, Math.ceil(Math.sqrt(values.length)) * 2));
    const step = (hi - lo) / bins || 1;
    const counts = new Array(bins).fill(0);
    for (const v of values) counts[Math.min(bins - 1, Math.floor((v - lo) / step))] += 1;
    const top = counts.reduce((a, b) => Math.max(a, b), 0);
    const pad = { left: 36, right: 8, top: 8, bottom: 24 };
    const w = width - pad.left - pad.right;
    const ht = height - pad.top - pad.bottom;
    const font = getComputedStyle(document.body).fontFamily;
    g.font = `11px ${font}`;
    g.fillStyle = "#475467";
    g.strokeStyle = "#e3e6eb";
    g.textAlign = "right";
    g.textBaseline = "middle";
    for (const n of [0, Math.ceil(top / 2), top]) {
      const y = pad.top + ht - (ht * n) / top;
      g.fillText(String(n), pad.left - 6, y);
      g.beginPath();
      g.moveTo(pad.left, y + 0.5);
      g.lineTo(pad.left + w, y + 0.5);
      g.stroke();
    }
    counts.forEach((n, i) => {
      const x0 = lo + i * step;
      const bw = w / bins;
      const bh = (ht * n) / top;
      g.fillStyle = x0 + step / 2 >= 0 ? COLORS.up : COLORS.down;
      g.fillRect(pad.left + i * bw + 1, pad.top + ht - bh, Math.max(1, bw - 2), bh);
    });
    g.fillStyle = "#475467";
    g.textAlign = "center";
    g.textBaseline = "top";
    const labels = Math.min(bins, Math.max(2, Math.floor(w / 70)));
    for (let i = 0; i <= labels; i++) {
      const v = lo + ((hi - lo) * i) / labels;
      g.fillText(`${v.toFixed(1)}%`, pad.left + (w * i) / labels, pad.top + ht + 6);
    }
  };
  draw();
  new ResizeObserver(() => draw()).observe(box);
}

// ---------------------------------------------------------------------------
// Trades table: sortable, paged.

const COLUMNS = [
  { key: "index", label: "#", num: true, value: (t) => t.index },
  { key: "symbol", label: "Symbol", value: (t) => t.symbol },
  { key: "side", label: "Side", value: (t) => t.side },
  { key: "quantity", label: "Qty", num: true, value: (t) => Number(t.quantity) },
  { key: "entry_time", label: "Entry", value: (t) => t.entry_time, show: (t) => when(t.entry_time) },
  { key: "entry_price", label: "Entry price", num: true, value: (t) => Number(t.entry_price), show: (t) => t.entry_price },
  { key: "exit_time", label: "Exit", value: (t) => t.exit_time, show: (t) => when(t.exit_time) },
  { key: "exit_price", label: "Exit price", num: true, value: (t) => Number(t.exit_price), show: (t) => t.exit_price },
  { key: "pnl", label: "PnL", num: true, value: (t) => Number(t.pnl), show: (t) => t.pnl, tone: (t) => tone(t.pnl) },
  { key: "commission", label: "Commission", num: true, value: (t) => Number(t.commission), show: (t) => t.commission },
  { key: "return_pct", label: "Return", num: true, value: (t) => (t.return_pct === null ? -Infinity : t.return_pct), show: (t) => pct(t.return_pct), tone: (t) => tone(t.return_pct) },
];

function tradesTable(trades) {
  const rows = trades.map((t, i) => ({ ...t, index: i + 1 }));
  let sort = { key: "index", dir: 1 };
  let page = 0;
  const head = $("trades-head");
  const buttons = new Map();
  head.replaceChildren(
    ...COLUMNS.map((col) => {
      const button = h("button", { type: "button", class: "sort" }, col.label);
      buttons.set(col.key, button);
      button.addEventListener("click", () => {
        sort = { key: col.key, dir: sort.key === col.key ? -sort.dir : col.num ? -1 : 1 };
        page = 0;
        render();
      });
      return h("th", { scope: "col", class: col.num ? "num" : "", dataset: { key: col.key } }, button);
    }),
  );
  const render = () => {
    const col = COLUMNS.find((c) => c.key === sort.key);
    // Rows come in closing order, the default; any other order is sorted for.
    const sorted = sort.key === "index" && sort.dir > 0 ? rows : rows.slice().sort((a, b) => {
      const x = col.value(a);
      const y = col.value(b);
      return (x < y ? -1 : x > y ? 1 : a.index - b.index) * sort.dir || a.index - b.index;
    });
    for (const th of head.children) {
      th.setAttribute("aria-sort", th.dataset.key === sort.key ? (sort.dir > 0 ? "ascending" : "descending") : "none");
    }
    const pages = Math.max(1, Math.ceil(sorted.length / TRADES_PER_PAGE));
    page = Math.min(page, pages - 1);
    const shown = sorted.slice(page * TRADES_PER_PAGE, (page + 1) * TRADES_PER_PAGE);
    $("trades-body").replaceChildren(
      ...shown.map((t) =>
        h(
          "tr",
          { dataset: { trade: String(t.index) } },
          ...COLUMNS.map((c) => h("td", { class: [c.num ? "num" : "", c.tone ? c.tone(t) : ""].join(" ").trim(), "data-label": c.label }, c.show ? c.show(t) : String(c.value(t)))),
        ),
      ),
    );
    $("trades-pager").hidden = pages === 1;
    $("trades-page").textContent = `Page ${page + 1} of ${pages}`;
    $("trades-prev").disabled = page === 0;
    $("trades-next").disabled = page >= pages - 1;
  };
  $("trades-prev").addEventListener("click", () => {
    page -= 1;
    render();
  });
  $("trades-next").addEventListener("click", () => {
    page += 1;
    render();
  });
  render();
  const wins = trades.filter((t) => Number(t.pnl) > 0).length;
  $("trades-sub").textContent = trades.length
    ? `${trades.length.toLocaleString()} closed round trips, ${wins.toLocaleString()} winning. Select a column to sort.`
    : "No round trip was closed.";
}

// ---------------------------------------------------------------------------
// Monthly heatmap and yearly returns.

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** A heat class from -5 to 5 for `v` against the largest magnitude `scale`. */
function heat(v, scale) {
  if (!isNum(v) || Number(v) === 0 || !scale) return "heat heat-0";
  const level = Math.max(1, Math.min(5, Math.ceil((5 * Math.abs(Number(v))) / scale)));
  return `heat heat-${Number(v) > 0 ? "p" : "n"}${level}`;
}

function periods(monthly, yearly) {
  const byYear = new Map();
  for (const m of monthly) {
    const [year, month] = m.period.split("-");
    if (!byYear.has(year)) byYear.set(year, new Array(12).fill(null));
    byYear.get(year)[Number(month) - 1] = m;
  }
  const yearOf = new Map(yearly.map((y) => [y.period, y]));
  for (const y of yearOf.keys()) if (!byYear.has(y)) byYear.set(y, new Array(12).fill(null));
  const scale = Math.max(0, ...monthly.map((m) => Math.abs(Number(m.return_pct))));
  const yearScale = Math.max(0, ...yearly.map((y) => Math.abs(Number(y.return_pct))));
  const table = h(
    "table",
    { class: "heatmap" },
    h("caption", { class: "sr-only" }, "Monthly returns in percent, one row per year, the year's return last"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Year"), ...MONTHS.map((m) => h("th", { scope: "col", class: "num" }, m)), h("th", { scope: "col", class: "num" }, "Year"))),
    h(
      "tbody",
      {},
      ...[...byYear.keys()].sort().map((year) => {
        const y = yearOf.get(year);
        return h(
          "tr",
          {},
          h("th", { scope: "row" }, year),
          ...byYear.get(year).map((m, i) =>
            m
              ? h("td", { class: `num ${heat(m.return_pct, scale)}`, title: `${MONTHS[i]} ${year}: ${pct(m.return_pct)}, equity ${money(m.end_equity)}`, dataset: { period: m.period } }, signed(m.return_pct, 1))
              : h("td", { class: "num heat heat-none" }, ""),
          ),
          h("td", { class: `num year-cell ${y ? heat(y.return_pct, yearScale) : "heat heat-none"}`, dataset: y ? { period: y.period } : {} }, y ? signed(y.return_pct, 1) : ""),
        );
      }),
    ),
  );
  $("chart-monthly").replaceChildren(table);
  // Yearly returns as bars, widths set through the CSSOM (the policy allows no style attributes).
  const bars = yearly.map((y) => {
    const v = Number(y.return_pct);
    const bar = h("span", { class: `bar ${v >= 0 ? "bar-pos" : "bar-neg"}` });
    bar.style.width = `${yearScale ? (50 * Math.abs(v)) / yearScale : 0}%`;
    return h("div", { class: "yearly-row", dataset: { period: y.period } }, h("span", { class: "yearly-label" }, y.period), h("span", { class: "yearly-track" }, bar), h("span", { class: `yearly-value num ${tone(v)}` }, pct(v)));
  });
  $("chart-yearly").replaceChildren(...bars);
  $("panel-periods").hidden = false;
}

// ---------------------------------------------------------------------------
// Parameters.

function flatten(value, prefix = "", out = []) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.push([prefix, Array.isArray(value) ? value.join(", ") : value === null ? "—" : String(value)]);
  }
  return out;
}

function parameters(params) {
  const pairs = flatten(params || {});
  $("params").replaceChildren(...pairs.flatMap(([k, v]) => [h("dt", { class: "mono" }, k), h("dd", { class: "mono" }, v)]));
  $("params-actions").replaceChildren(copyButton(() => JSON.stringify(params, null, 2), "Copy as JSON"));
  $("panel-params").hidden = false;
}

// ---------------------------------------------------------------------------
// The page.

function head(detail) {
  const params = detail.params || {};
  document.title = `Results ${detail.session_id} · SimuTrador`;
  $("run-name").textContent = params.strategy ? `${params.strategy} · ${detail.session_id}` : detail.session_id;
  const symbols = (detail.symbols || params.symbols || []).join(", ");
  const range = [params.start_date, params.end_date].filter(Boolean).map(dateText).join(" to ");
  $("run-sub").textContent = [symbols, detail.timeframe || params.timeframe, range, `created ${when(detail.created_at)}`].filter(Boolean).join(" · ");
  $("run-state").replaceChildren(stateBadge(detail.state));
  const csv = $("trades-csv");
  csv.href = `/api/sessions/${encodeURIComponent(detail.session_id)}/trades.csv`;
  csv.hidden = !detail.trades;
  $("run-head").hidden = false;
}

function progress(detail) {
  const box = $("run-progress");
  box.hidden = false;
  const pctDone = Number(detail.progress_pct || 0);
  $("run-progress-bar").value = pctDone;
  const done = detail.sequence_id || 0;
  const total = detail.ticks_total;
  $("run-progress-text").textContent = total
    ? `Running: ${pctDone.toFixed(1)}% · ${done.toLocaleString()} of ${total.toLocaleString()} bars. The results open here when it ends.`
    : "Running. The results open here when it ends.";
}

async function render(detail, raw) {
  // The candles are fetched while the other panels draw.
  const params = { ...(detail.params || {}), timeframe: (detail.params || {}).timeframe || detail.timeframe };
  const symbols = params.timeframe ? detail.symbols || params.symbols || [] : [];
  $("panel-candles").hidden = symbols.length === 0;
  const width = $("candles").clientWidth || 800;
  const bars = symbols.map((s) => loadBars(s, params, width));
  for (const b of bars) b.catch(() => {});
  head(detail);
  $("run-progress").hidden = true;
  if (detail.metrics) figures(detail.metrics, raw);
  const analytics = detail.analytics;
  // Sessions stored before the analytics existed have only the equity curve.
  const curve = analytics ? analytics.curve : detail.equity_curve || [];
  if (curve.length) {
    equityChart(curve, Boolean(analytics));
    if (analytics) drawdownChart(curve);
  }
  const trades = detail.trades || [];
  if (detail.trades) {
    $("panel-trades").hidden = false;
    tradesTable(trades);
    histogram($("chart-trade-returns"), (analytics ? analytics.trade_returns_pct : trades.map((t) => t.return_pct)).map(Number).filter(Number.isFinite));
  }
  if (analytics) periods(analytics.monthly_returns, analytics.yearly_returns);
  parameters(detail.params);
  if (symbols.length) {
    const results = await Promise.allSettled(symbols.map((s, i) => candleChart(s, params, trades, bars[i])));
    const failed = results.filter((r) => r.status === "rejected");
    if (failed.length) {
      say(message, "warning", `The prices of ${failed.length === symbols.length ? "the symbols" : "some symbols"} could not be loaded. ${describe(failed[0].reason)}`);
    }
  }
}

async function main() {
  const signedIn = shell();
  try {
    let { detail, raw } = await loadSession();
    await signedIn;
    while (LIVE_STATES.has(detail.state)) {
      head(detail);
      progress(detail);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      ({ detail, raw } = await loadSession());
    }
    clear(message);
    await render(detail, raw);
    root.dataset.rendered = "true";
    // For measurements: milliseconds from navigation start to everything drawn.
    performance.mark("results-rendered");
  } catch (error) {
    $("run-head").hidden = true;
    if (error && error.status === 404) {
      say(message, "error", "There is no such session among yours. It may have been deleted, or the link is wrong.", h("a", { class: "btn btn-sm", href: "/" }, "Back to the dashboard"));
      root.dataset.notFound = "true";
    } else {
      say(message, "error", `Could not load the results. ${describe(error)}`);
    }
    root.dataset.failed = "true";
  } finally {
    root.removeAttribute("aria-busy");
  }
}

main();
