// Calls to the SimuTrador API from the console's pages. The login session lives in
// HttpOnly cookies this script cannot read; it only repeats the CSRF cookie in the
// X-CSRF-Token header of requests that change something. On a 401 the session is
// refreshed once (POST /auth/refresh with the refresh cookie) and the request tried
// again; when that fails too, the page goes to /login and comes back after.

/** An error answer of the API: `{error, message}` with its status. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null, limitType = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    // Which limit refused a 429 (`X-RateLimit-Type`: sessions, api_requests, ...).
    this.limitType = limitType;
  }

  /** True when the server could not be reached at all, or said it is unavailable. */
  get unreachable() {
    return this.status === 0 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** The value of the readable CSRF cookie, or "". */
export function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === "st_csrf") return decodeURIComponent(rest.join("="));
  }
  return "";
}

/** Whether this browser seems to hold a console session (the CSRF cookie is there). */
export function hasSession() {
  return csrfToken() !== "";
}

let refreshing = null;

/** Refreshes the cookie session once, however many calls ask at the same time. */
export function refreshSession() {
  if (!refreshing) {
    refreshing = fetch("/auth/refresh", {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: "{}",
    })
      .then((res) => res.ok)
      .catch(() => false)
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

/** Sends the browser to the sign-in page, to come back here afterwards. */
export function toLogin() {
  const here = location.pathname + location.search;
  location.assign("/login?next=" + encodeURIComponent(here));
}

async function send(method, path, body, extra = {}) {
  const headers = { Accept: "application/json", ...extra };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (UNSAFE.has(method)) {
    const token = csrfToken();
    if (token) headers["X-CSRF-Token"] = token;
  }
  try {
    return await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "NETWORK", "The server cannot be reached. Check your connection and try again.");
  }
}

async function decode(res, parse = JSON.parse) {
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = res.ok ? parse(text) : JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (res.ok) return data;
  const retry = Number.parseInt(res.headers.get("Retry-After") || "", 10);
  const code = data && data.error ? data.error : "HTTP_" + res.status;
  const message = data && data.message ? data.message : res.statusText || "The request failed.";
  const limitType = res.headers.get("X-RateLimit-Type");
  throw new ApiError(res.status, code, message, Number.isFinite(retry) ? retry : null, limitType);
}

/**
 * One API call as the signed-in user: the JSON answer (null for 204), or an ApiError.
 * `signedIn: false` is for the sign-in pages, where a 401 is an answer, not an
 * expired session; `headers` are added to the request; `parse` reads a successful
 * answer's text instead of `JSON.parse`.
 */
export async function api(method, path, body, { signedIn = true, headers = {}, parse } = {}) {
  let res = await send(method, path, body, headers);
  if (res.status === 401 && signedIn) {
    if (await refreshSession()) {
      res = await send(method, path, body, headers);
    }
    if (res.status === 401) {
      toLogin();
      throw new ApiError(401, "AUTH_FAILED", "Your session has ended. Sign in again.");
    }
  }
  return decode(res, parse);
}

export const get = (path, options) => api("GET", path, undefined, options);
export const post = (path, body, options) => api("POST", path, body === undefined ? {} : body, options);
export const del = (path, options) => api("DELETE", path, undefined, options);
