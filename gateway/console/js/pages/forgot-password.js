// Asks for a password mail: POST /auth/password/forgot, answered the same whether or
// not the address has an account.

import { post } from "../api.js";
import { $, busy, describe, say } from "../ui.js";

const form = $("forgot-form");
const message = $("forgot-message");

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const email = $("email").value.trim();
  if (!email) {
    say(message, "error", "Enter your email address.");
    $("email").focus();
    return;
  }
  busy($("forgot-submit"), async () => {
    try {
      await post("/auth/password/forgot", { email }, { signedIn: false });
      say(message, "success", `If ${email} has an account, a link to choose a new password is on its way. It works once and expires after a while.`);
    } catch (error) {
      say(message, "error", describe(error));
    }
  });
});
