// The page the verification mail links to (smtp.verify_url): posts `?token=` to
// POST /auth/verify-email, and offers a new link when the token is used up.

import { post } from "../api.js";
import { $, busy, describe, say } from "../ui.js";

const message = $("verify-message");
const form = $("verify-form");

async function verify(token) {
  try {
    const answer = await post("/auth/verify-email", { token }, { signedIn: false });
    form.hidden = true;
    $("resend-form").hidden = true;
    $("page-title").textContent = "Email verified";
    $("verify-lead").textContent = "Your account is ready.";
    say(message, "success", `${answer.email} is verified. You can sign in now.`);
    $("verified-continue").hidden = false;
    $("verified-continue").focus();
  } catch (error) {
    const text = error.status === 400
      ? "This verification link is invalid, was used already, or has expired."
      : describe(error);
    say(message, "error", text);
    form.hidden = false;
    $("resend-form").hidden = false;
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  if (!token) {
    say(message, "error", "Paste the token from the verification mail.");
    return;
  }
  busy($("verify-submit"), () => verify(token));
});

$("resend-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const email = $("resend-email").value.trim();
  if (!email) {
    say(message, "error", "Enter the address you registered with.");
    $("resend-email").focus();
    return;
  }
  busy($("resend-submit"), async () => {
    try {
      await post("/auth/resend-verification", { email }, { signedIn: false });
      say(message, "success", `If ${email} is waiting for verification, a new link is on its way.`);
    } catch (error) {
      say(message, "error", describe(error));
    }
  });
});

const token = new URLSearchParams(location.search).get("token");
if (token) {
  // The token is a credential: it leaves the address bar (and the history) at once.
  history.replaceState(null, "", location.pathname);
  say(message, "info", "Verifying your email…");
  verify(token);
} else {
  form.hidden = false;
}
