// Registration: POST /auth/register. The answer is the same whether or not the
// address already has an account (its owner is told by mail instead).

import { post } from "../api.js";
import { $, busy, describe, newPassword, say } from "../ui.js";

const form = $("register-form");
const message = $("register-message");

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const email = $("email").value.trim();
  if (!email) {
    say(message, "error", "Enter your email address.");
    $("email").focus();
    return;
  }
  const password = newPassword(message, "password", "confirm");
  if (password === null) return;
  busy($("register-submit"), async () => {
    try {
      await post("/auth/register", { email, password }, { signedIn: false });
      message.hidden = true;
      form.hidden = true;
      $("sent-to").textContent = email;
      $("register-done").hidden = false;
      $("page-title").textContent = "Verify your email";
    } catch (error) {
      say(message, "error", describe(error));
    }
  });
});
