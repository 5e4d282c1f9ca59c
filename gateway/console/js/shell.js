// The signed-in app's frame: who is signed in (GET /auth/me), the log-out button and
// the navigation drawer on narrow screens. Each app page calls `shell()` first.

import { ApiError, get, post } from "./api.js";
import { $, describe, say } from "./ui.js";

/** Ends the login session (its cookies are cleared by the answer) and goes to /login. */
export async function logOut() {
  try {
    await post("/auth/logout");
  } catch (error) {
    // A session that already ended is logged out too.
    if (!(error instanceof ApiError) || error.status !== 401) {
      say($("flash"), "error", describe(error));
      return;
    }
  }
  location.assign("/login?signed_out=1");
}

function drawer() {
  const toggle = $("nav-toggle");
  const scrim = $("scrim");
  const set = (open) => {
    document.body.classList.toggle("nav-open", open);
    toggle.setAttribute("aria-expanded", String(open));
    scrim.hidden = !open;
  };
  toggle.addEventListener("click", () => set(!document.body.classList.contains("nav-open")));
  scrim.addEventListener("click", () => set(false));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") set(false);
  });
}

/** Sets up the frame; resolves with the signed-in user (`GET /auth/me`). */
export async function shell() {
  drawer();
  $("logout").addEventListener("click", logOut);
  const me = await get("/auth/me");
  $("user-email").textContent = me.email;
  $("user-email").title = me.email;
  $("user-plan").textContent = `${me.plan} plan${me.role === "admin" ? " · operator" : ""}`;
  $("user-avatar").textContent = (me.email || "?").slice(0, 1);
  return me;
}
