// The account page: profile, password change, API keys (create with the secret shown
// once, revoke, rotate), two-step sign-in (enrol with a QR code, recovery codes,
// turn off), the login sessions (end one) and log-out.

import qrcode from "../../vendor/qrcode-generator/qrcode.mjs";
import { del, get, post } from "../api.js";
import { logOut, shell } from "../shell.js";
import { $, ago, busy, clear, confirmAction, copyButton, day, describe, h, newPassword, say, when } from "../ui.js";

let me = null;

// ---- Profile ---------------------------------------------------------------------

function profile() {
  $("profile-email").textContent = me.email;
  $("profile-plan").replaceChildren(h("span", { class: "badge badge-info badge-plain" }, me.plan));
  $("profile-role").textContent = me.role === "admin" ? "Operator" : "User";
  $("profile-verified").textContent = me.email_verified ? "Yes" : "Not yet";
  $("profile-since").textContent = day(me.created_at);
}

// ---- Password --------------------------------------------------------------------

$("password-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const message = $("password-message");
  const current = $("current-password").value;
  if (!current) {
    say(message, "error", "Enter your current password.");
    $("current-password").focus();
    return;
  }
  const next = newPassword(message, "new-password", "confirm-password");
  if (next === null) return;
  busy($("password-submit"), async () => {
    try {
      await post("/auth/password/change", { current_password: current, new_password: next });
      $("password-form").reset();
      say(message, "success", "Password changed. Every other browser was signed out.");
      loadLogins();
    } catch (error) {
      say(message, "error", error.status === 401 ? "The current password is not right." : describe(error));
    }
  });
});

// ---- API keys --------------------------------------------------------------------

function keyStatus(key) {
  if (key.revoked_at) return h("span", { class: "badge badge-danger" }, "revoked");
  if (key.expires_at && new Date(key.expires_at) <= new Date()) return h("span", { class: "badge badge-warning" }, "expired");
  return h("span", { class: "badge badge-success" }, "active");
}

function keyRow(key) {
  const usable = !key.revoked_at && !(key.expires_at && new Date(key.expires_at) <= new Date());
  const actions = h("td", { class: "actions" });
  if (usable) {
    const rotate = h("button", { type: "button", class: "btn btn-sm", "data-action": "rotate" }, "Rotate");
    const revoke = h("button", { type: "button", class: "btn btn-sm btn-danger", "data-action": "revoke" }, "Revoke");
    rotate.addEventListener("click", () => rotateKey(key, rotate));
    revoke.addEventListener("click", () => revokeKey(key, revoke));
    actions.append(rotate, revoke);
  }
  return h(
    "tr",
    { dataset: { keyId: key.id, keyName: key.name } },
    h("td", { class: "cell-wide" }, h("strong", {}, key.name)),
    h("td", { "data-label": "Key" }, h("code", {}, key.prefix)),
    h("td", { class: "hide-narrow nowrap", "data-label": "Created" }, day(key.created_at)),
    h("td", { class: "hide-narrow nowrap", "data-label": "Last used" }, key.last_used_at ? ago(key.last_used_at) : "Never"),
    h("td", { class: "nowrap", "data-label": "Expires" }, key.expires_at ? day(key.expires_at) : "Never"),
    h("td", { "data-label": "Status" }, keyStatus(key)),
    actions,
  );
}

async function loadKeys() {
  try {
    const { keys } = await get("/api/keys");
    $("keys-body").replaceChildren(...keys.map(keyRow));
    $("keys-table").hidden = keys.length === 0;
    $("keys-empty").hidden = keys.length !== 0;
  } catch (error) {
    say($("keys-message"), "error", `Could not load your API keys. ${describe(error)}`);
  }
}

function showSecret(secret, note) {
  $("new-key-note").replaceChildren(h("strong", {}, "Copy your new key now."), ` ${note}`);
  $("new-key-secret").textContent = secret;
  $("new-key-copy").replaceChildren(copyButton(secret, "Copy key"));
  $("new-key").hidden = false;
  $("new-key-secret").focus();
}

$("new-key-done").addEventListener("click", () => {
  $("new-key").hidden = true;
  $("new-key-secret").textContent = "";
});

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const message = $("keys-message");
  const name = $("key-name").value.trim();
  if (!name) {
    say(message, "error", "Give the key a name, so you know later where it is used.");
    $("key-name").focus();
    return;
  }
  const days = $("key-expiry").value;
  const body = days ? { name, expires_in_days: Number(days) } : { name };
  busy($("key-submit"), async () => {
    try {
      const created = await post("/api/keys", body);
      clear(message);
      $("key-name").value = "";
      showSecret(created.key, "It will not be shown again.");
      await loadKeys();
    } catch (error) {
      say(message, "error", describe(error));
    }
  });
});

async function revokeKey(key, button) {
  const ok = await confirmAction({
    title: `Revoke “${key.name}”?`,
    text: "Programs using this key stop working within a second, and its open connections close. This cannot be undone.",
    confirm: "Revoke key",
  });
  if (!ok) return;
  await busy(button, async () => {
    try {
      await del(`/api/keys/${encodeURIComponent(key.id)}`);
      say($("keys-message"), "success", `“${key.name}” is revoked.`);
      await loadKeys();
    } catch (error) {
      say($("keys-message"), "error", describe(error));
    }
  });
}

async function rotateKey(key, button) {
  const ok = await confirmAction({
    title: `Rotate “${key.name}”?`,
    text: "You get a new key with the same name and expiry. The old one keeps working for 24 hours, so you can switch your programs over.",
    confirm: "Rotate key",
    danger: false,
  });
  if (!ok) return;
  await busy(button, async () => {
    try {
      const created = await post(`/api/keys/${encodeURIComponent(key.id)}/rotate`);
      clear($("keys-message"));
      showSecret(created.key, "The old key keeps working for 24 hours.");
      await loadKeys();
    } catch (error) {
      say($("keys-message"), "error", describe(error));
    }
  });
}

// ---- Two-step sign-in ------------------------------------------------------------

function totpView(view) {
  for (const id of ["totp-off", "totp-enrol", "totp-codes", "totp-on"]) $(id).hidden = id !== view;
  const on = view === "totp-on" || view === "totp-codes";
  const status = $("totp-status");
  status.textContent = on ? "on" : "off";
  status.className = `badge ${on ? "badge-success" : ""}`;
}

/** Draws the QR code of `text` on the canvas, dark modules on white with a quiet zone. */
function drawQr(canvas, text) {
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  const modules = qr.getModuleCount();
  const quiet = 4;
  const scale = Math.max(1, Math.floor(canvas.width / (modules + 2 * quiet)));
  const size = (modules + 2 * quiet) * scale;
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, size, size);
  ctx.fillStyle = "#101828";
  for (let r = 0; r < modules; r += 1) {
    for (let c = 0; c < modules; c += 1) {
      if (qr.isDark(r, c)) ctx.fillRect((c + quiet) * scale, (r + quiet) * scale, scale, scale);
    }
  }
}

$("totp-start").addEventListener("click", () =>
  busy($("totp-start"), async () => {
    const message = $("totp-message");
    try {
      const enrolment = await post("/auth/totp/enrol");
      clear(message);
      drawQr($("totp-qr"), enrolment.provisioning_uri);
      const grouped = enrolment.secret.replace(/(.{4})/g, "$1 ").trim();
      $("totp-secret").textContent = grouped;
      $("totp-secret").dataset.secret = enrolment.secret;
      $("totp-secret-copy").replaceChildren(copyButton(enrolment.secret, "Copy key"));
      totpView("totp-enrol");
      $("totp-code").focus();
    } catch (error) {
      say(message, "error", describe(error));
    }
  }),
);

$("totp-cancel").addEventListener("click", () => {
  clear($("totp-message"));
  totpView("totp-off");
});

$("totp-confirm-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const message = $("totp-message");
  const code = $("totp-code").value.trim();
  if (!/^\d{6}$/.test(code)) {
    say(message, "error", "Enter the 6-digit code your app shows.");
    $("totp-code").focus();
    return;
  }
  busy($("totp-confirm"), async () => {
    try {
      const { recovery_codes: codes } = await post("/auth/totp/confirm", { code });
      clear(message);
      $("recovery-codes").replaceChildren(...codes.map((c) => h("li", {}, c)));
      $("recovery-copy").replaceChildren(copyButton(codes.join("\n"), "Copy codes"));
      $("totp-code").value = "";
      totpView("totp-codes");
    } catch (error) {
      say(message, "error", error.status === 401 || error.status === 400
        ? "That code is not valid. Check the time on your phone, then enter the code the app shows now."
        : describe(error));
    }
  });
});

$("recovery-done").addEventListener("click", () => {
  $("recovery-codes").replaceChildren();
  totpView("totp-on");
});

$("totp-disable-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const message = $("totp-message");
  const password = $("totp-disable-password").value;
  const code = $("totp-disable-code").value.trim();
  if (!password || !code) {
    say(message, "error", "Enter your password and a current code from the app.");
    return;
  }
  busy($("totp-disable"), async () => {
    try {
      await post("/auth/totp/disable", { password, code });
      $("totp-disable-form").reset();
      say(message, "success", "Two-step sign-in is off.");
      totpView("totp-off");
    } catch (error) {
      say(message, "error", error.status === 401
        ? "The password or the code is not right. Wrong attempts count toward the sign-in lockout."
        : describe(error));
    }
  });
});

// ---- Login sessions ----------------------------------------------------------------

/** "Chrome on Linux" from a user agent, or the start of it. */
function device(agent) {
  if (!agent) return "Unknown device";
  const browser = [
    [/Edg\//, "Edge"],
    [/OPR\//, "Opera"],
    [/Firefox\//, "Firefox"],
    [/Chrom(e|ium)\//, "Chrome"],
    [/Safari\//, "Safari"],
    [/curl\//, "curl"],
    [/python|aiohttp|httpx|requests/i, "Python"],
    [/awc|actix/i, "SimuTrador CLI"],
  ].find(([re]) => re.test(agent));
  const os = [
    [/Windows/, "Windows"],
    [/Android/, "Android"],
    [/iPhone|iPad/, "iOS"],
    [/Mac OS X/, "macOS"],
    [/Linux/, "Linux"],
  ].find(([re]) => re.test(agent));
  if (browser) return os ? `${browser[1]} on ${os[1]}` : browser[1];
  return agent.length > 40 ? `${agent.slice(0, 40)}…` : agent;
}

function loginRow(session) {
  const action = h("td", { class: "actions" });
  if (session.current) {
    action.append(h("span", { class: "badge badge-info" }, "This browser"));
  } else {
    const end = h("button", { type: "button", class: "btn btn-sm btn-danger", "data-action": "end" }, "End");
    end.addEventListener("click", () => endSession(session, end));
    action.append(end);
  }
  return h(
    "tr",
    { dataset: { sessionId: session.id } },
    h("td", { class: "cell-wide" }, h("div", {}, device(session.user_agent)), h("div", { class: "small muted" }, `Expires ${when(session.expires_at)}`)),
    h("td", { class: "hide-narrow", "data-label": "Address" }, session.ip || "—"),
    h("td", { class: "hide-narrow nowrap", "data-label": "Signed in" }, when(session.created_at)),
    h("td", { class: "nowrap", "data-label": "Last active" }, ago(session.last_used_at)),
    action,
  );
}

async function loadLogins() {
  try {
    const { sessions } = await get("/auth/sessions");
    sessions.sort((a, b) => Number(b.current) - Number(a.current) || b.last_used_at.localeCompare(a.last_used_at));
    $("logins-body").replaceChildren(...sessions.map(loginRow));
  } catch (error) {
    say($("logins-message"), "error", `Could not load your sessions. ${describe(error)}`);
  }
}

async function endSession(session, button) {
  const ok = await confirmAction({
    title: "End this session?",
    text: `${device(session.user_agent)} is signed out within a second.`,
    confirm: "End session",
  });
  if (!ok) return;
  await busy(button, async () => {
    try {
      await del(`/auth/sessions/${encodeURIComponent(session.id)}`);
      clear($("logins-message"));
      await loadLogins();
    } catch (error) {
      say($("logins-message"), "error", describe(error));
    }
  });
}

$("account-logout").addEventListener("click", logOut);

// ---- Start -------------------------------------------------------------------------

shell().then(
  (user) => {
    me = user;
    profile();
    totpView(me.totp_enabled ? "totp-on" : "totp-off");
    return Promise.all([loadKeys(), loadLogins()]);
  },
  (error) => say($("flash"), "error", describe(error)),
);
