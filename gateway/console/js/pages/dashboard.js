// The dashboard: plan and usage (GET /api/limits) and the user's sessions
// (GET /api/sessions), refreshed every few seconds while any session is live.

import { get } from "../api.js";
import { shell } from "../shell.js";
import { $, LIVE_STATES, clear, describe, h, money, percent, say, stateBadge, when } from "../ui.js";

const POLL_MS = 3000;
let timer = null;

function stateCell(session) {
  const cell = h("td", { "data-label": "State" }, stateBadge(session.state));
  if (LIVE_STATES.has(session.state) && session.ticks_total) {
    const done = session.sequence_id || 0;
    const pct = Math.min(100, (100 * done) / session.ticks_total);
    cell.append(
      h("div", { class: "small muted" }, `${pct.toFixed(1)}% · ${done.toLocaleString()} of ${session.ticks_total.toLocaleString()} bars`),
      h("progress", { max: session.ticks_total, value: done, "aria-label": `Progress of ${session.session_id}` }),
    );
  }
  return cell;
}

function row(session) {
  const ret = session.total_return_pct;
  const retClass = ret > 0 ? "num pos" : ret < 0 ? "num neg" : "num";
  return h(
    "tr",
    { dataset: { session: session.session_id } },
    h("td", { class: "cell-wide" }, h("a", { href: `/results/${encodeURIComponent(session.session_id)}`, class: "mono session-id" }, session.session_id)),
    stateCell(session),
    h("td", { "data-label": "Market" }, h("div", {}, (session.symbols || []).join(", ")), h("div", { class: "small muted" }, session.timeframe)),
    h("td", { class: "hide-narrow nowrap", "data-label": "Created" }, when(session.created_at)),
    h("td", { class: "num", "data-label": "Final equity" }, money(session.final_equity)),
    h("td", { class: retClass, "data-label": "Return" }, percent(ret)),
  );
}

async function loadSessions() {
  const message = $("sessions-message");
  try {
    const { sessions } = await get("/api/sessions?limit=50");
    clear(message);
    $("sessions-body").replaceChildren(...sessions.map(row));
    $("sessions-table").hidden = sessions.length === 0;
    $("sessions-empty").hidden = sessions.length !== 0;
    const live = sessions.filter((s) => LIVE_STATES.has(s.state)).length;
    $("sessions-sub").textContent = live
      ? `${live} live, updating every few seconds. Newest first.`
      : "Your live and finished simulations, newest first.";
    clearTimeout(timer);
    if (live) timer = setTimeout(refresh, POLL_MS);
  } catch (error) {
    say(message, "error", `Could not load your sessions. ${describe(error)}`);
  }
}

function usage(id, meterId, used, cap) {
  $(id).replaceChildren(String(used), h("small", {}, ` / ${cap}`));
  const meter = $(meterId);
  meter.max = Math.max(cap, 1);
  meter.value = used;
  meter.low = meter.max * 0.7;
  meter.high = meter.max * 0.9;
  meter.optimum = 0;
}

async function loadLimits() {
  try {
    const limits = await get("/api/limits");
    $("stat-plan").textContent = limits.plan.charAt(0).toUpperCase() + limits.plan.slice(1);
    $("stat-plan-foot").textContent = `Up to ${limits.limits.max_working_orders.toLocaleString()} working orders a session`;
    usage("stat-sessions", "meter-sessions", limits.usage.sessions, limits.limits.concurrent_sessions);
    usage("stat-connections", "meter-connections", limits.usage.connections, limits.limits.concurrent_connections);
    const rule = limits.limits.api_requests;
    if (rule && limits.usage.api_requests !== null) {
      $("stat-requests").replaceChildren(String(limits.usage.api_requests), h("small", {}, ` / ${rule.requests}`));
      const reset = limits.reset_times.api_requests;
      $("stat-requests-foot").textContent = reset
        ? `Window resets at ${new Date(reset * 1000).toLocaleTimeString()}`
        : `Per ${rule.period_sec} s window`;
    } else {
      $("stat-requests").textContent = "Unlimited";
      $("stat-requests-foot").textContent = "Request limits are off";
    }
  } catch (error) {
    say($("flash"), "error", `Could not load your plan and usage. ${describe(error)}`);
  }
}

function refresh() {
  return Promise.all([loadSessions(), loadLimits()]);
}

$("refresh-sessions").addEventListener("click", refresh);
shell().then(refresh, (error) => say($("flash"), "error", describe(error)));
