// The sign-in page: email, password and server, then a TOTP or recovery code when
// the account has two-step sign-in. A console login asks for cookies
// (X-Auth-Mode: cookie): the tokens never reach this script.

import { ApiError, get, hasSession, post, refreshSession } from "../api.js";
import { $, busy, clear, describe, h, say, waitText } from "../ui.js";

const form = $("login-form");
const message = $("login-message");
const submit = $("login-submit");
const server = $("server");
const params = new URLSearchParams(location.search);
let step = "password";
let recovery = false;

/**
 * Where to go once signed in: `next` when it is a path on this site (not `//host` or
 * `/\host`, printable ASCII only, as the server checks it too), else `/`.
 */
function nextPath() {
  const next = params.get("next") || "";
  const onSite = next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") && /^[\x21-\x7e]+$/.test(next);
  return onSite ? next : "/";
}

async function loadServers() {
  server.disabled = true;
  try {
    const { servers } = await get("/auth/servers", { signedIn: false });
    server.replaceChildren(...servers.map((s) => h("option", { value: s.id }, s.name)));
    if (!servers.length) throw new ApiError(503, "NO_SERVERS", "No server accepts sign-ins right now.");
    server.disabled = false;
    if (message.textContent.startsWith("Could not load")) clear(message);
  } catch (error) {
    server.replaceChildren(h("option", { value: "" }, "Unavailable"));
    const retry = h("button", { type: "button", class: "btn btn-sm" }, "Try again");
    retry.addEventListener("click", loadServers);
    say(message, "error", `Could not load the list of servers. ${describe(error)}`, retry);
  }
}

function showCodeStep() {
  step = "code";
  $("step-password").hidden = true;
  $("step-code").hidden = false;
  $("start-over").hidden = false;
  $("page-title").textContent = "Two-step verification";
  $("login-lead").textContent = `Signing in as ${$("email").value.trim()}.`;
  submit.textContent = "Verify";
  setRecovery(false);
}

function setRecovery(on) {
  recovery = on;
  $("totp-field").hidden = on;
  $("recovery-field").hidden = !on;
  $("use-recovery").textContent = on ? "Use an authentication code instead" : "Use a recovery code instead";
  $("code-note").textContent = on
    ? "Enter one of your recovery codes."
    : "Enter the 6-digit code from your authenticator app.";
  (on ? $("recovery_code") : $("totp_code")).focus();
}

function startOver() {
  step = "password";
  $("step-password").hidden = false;
  $("step-code").hidden = true;
  $("start-over").hidden = true;
  $("page-title").textContent = "Sign in";
  $("login-lead").textContent = "Welcome back. Sign in to run and review your backtests.";
  submit.textContent = "Sign in";
  $("totp_code").value = "";
  $("recovery_code").value = "";
  $("password").value = "";
  clear(message);
  $("email").focus();
}

function holdFor(seconds) {
  let left = seconds;
  submit.disabled = true;
  const tick = () => {
    if (left <= 0) {
      submit.disabled = false;
      say(message, "info", "You can try again now.");
      return;
    }
    say(message, "error", `Too many sign-in attempts. Try again in ${waitText(left)}.`);
    left -= 1;
    setTimeout(tick, 1000);
  };
  tick();
}

function resendButton(email) {
  const button = h("button", { type: "button", class: "btn btn-sm" }, "Send a new link");
  button.addEventListener("click", () =>
    busy(button, async () => {
      try {
        await post("/auth/resend-verification", { email }, { signedIn: false });
        say(message, "success", `If ${email} is waiting for verification, a new link is on its way. Follow it, then sign in.`);
      } catch (error) {
        say(message, "error", describe(error));
      }
    }),
  );
  return button;
}

/** Shows what went wrong; the seconds to wait before trying again, if the answer said. */
function explain(error) {
  if (!(error instanceof ApiError)) {
    say(message, "error", "Something went wrong. Try again.");
    return;
  }
  if (error.status === 401 && error.code === "TOTP_REQUIRED") {
    clear(message);
    showCodeStep();
    return;
  }
  if (error.status === 401 && step === "code" && /second factor/i.test(error.message)) {
    say(message, "error", recovery
      ? "That recovery code is not valid, or was used already."
      : "That code is not valid. Codes change every 30 seconds: enter the one your app shows now.");
    (recovery ? $("recovery_code") : $("totp_code")).select();
    return;
  }
  if (error.status === 401) {
    say(message, "error", "Invalid email or password. After several failed attempts, sign-in is paused for a while; if you forgot your password, reset it.");
    if (step === "code") startOver();
    $("password").select();
    return;
  }
  if (error.status === 403 && error.code === "EMAIL_NOT_VERIFIED") {
    say(message, "warning", "Verify your email address first: follow the link we sent when you registered.", resendButton($("email").value.trim()));
    return;
  }
  if (error.status === 429) {
    // Held once the button is no longer busy (which would enable it again).
    return error.retryAfter || 60;
  }
  if (error.unreachable) {
    say(message, "error", "The server cannot be reached right now. Check your connection, or try again in a moment.");
    return;
  }
  say(message, "error", describe(error));
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const email = $("email").value.trim();
  const password = $("password").value;
  if (!email || !password) {
    say(message, "error", "Enter your email and password.");
    (email ? $("password") : $("email")).focus();
    return;
  }
  if (!server.value) {
    say(message, "error", "Choose a server.");
    server.focus();
    return;
  }
  const body = { email, password, server: server.value };
  if (step === "code") {
    const code = (recovery ? $("recovery_code") : $("totp_code")).value.trim();
    if (!code) {
      say(message, "error", recovery ? "Enter a recovery code." : "Enter the code from your authenticator app.");
      return;
    }
    body[recovery ? "recovery_code" : "totp_code"] = code;
  }
  let wait = 0;
  busy(submit, async () => {
    try {
      await post("/auth/login", body, { signedIn: false, headers: { "X-Auth-Mode": "cookie" } });
      say(message, "success", "Signed in. Opening the console…");
      location.assign(nextPath());
    } catch (error) {
      wait = explain(error) || 0;
    }
  }).then(() => {
    if (wait) holdFor(wait);
  });
});

$("use-recovery").addEventListener("click", () => setRecovery(!recovery));
$("start-over").addEventListener("click", startOver);

async function start() {
  if (params.get("signed_out")) say(message, "info", "You are signed out.");
  // A session whose access cookie expired continues without a new sign-in.
  if (hasSession() && (await refreshSession())) {
    location.replace(nextPath());
    return;
  }
  await loadServers();
}

start();
