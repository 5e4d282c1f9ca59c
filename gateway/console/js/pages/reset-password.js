// The page password and invitation mails link to (smtp.password_url): `?token=` and
// a new password go to POST /auth/password/reset.

import { post } from "../api.js";
import { $, busy, describe, newPassword, say } from "../ui.js";

const form = $("reset-form");
const message = $("reset-message");
let token = new URLSearchParams(location.search).get("token") || "";

if (token) {
  // The token is a credential: it leaves the address bar (and the history) at once.
  history.replaceState(null, "", location.pathname);
} else {
  $("token-field").hidden = false;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const given = token || $("token").value.trim();
  if (!given) {
    say(message, "error", "Paste the token from the password mail.");
    $("token").focus();
    return;
  }
  const password = newPassword(message, "password", "confirm");
  if (password === null) return;
  busy($("reset-submit"), async () => {
    try {
      const answer = await post("/auth/password/reset", { token: given, password }, { signedIn: false });
      form.hidden = true;
      $("page-title").textContent = "Password set";
      $("reset-lead").textContent = "You can sign in with your new password.";
      say(message, "success", `The password of ${answer.email} is set.`);
      const next = $("reset-continue");
      next.href = "/login";
      next.hidden = false;
      next.focus();
    } catch (error) {
      if (error.status === 400 && /token/i.test(error.message)) {
        token = "";
        $("token-field").hidden = false;
        say(message, "error", "This link is invalid, was used already, or has expired. Ask for a new one.");
      } else {
        say(message, "error", describe(error));
      }
    }
  });
});
