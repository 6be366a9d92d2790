// The bearer token: where it is kept and what the page learns from it.
//
// The token lives in sessionStorage only (per tab, gone when the tab closes), never in
// localStorage: a token there would outlive the session and be readable by any later script on
// the origin. The payload is decoded without verification, purely to show who is signed in and
// to scope localStorage entries by business; the API verifies the signature on every request.

const TOKEN_KEY = 'longtasks:token';
export const ROLES = ['viewer', 'operator', 'admin'];

export class TokenError extends Error {}

function base64UrlDecode(segment) {
  const b64 = segment.replace(/-/g, '+').replace(/_/g, '/');
  const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
  const binary = atob(padded);
  // atob yields Latin-1 "binary"; re-decode as UTF-8 so non-ASCII claims survive.
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/**
 * Decode a JWT's payload into {businessId, role, exp}. Throws TokenError with a readable reason.
 * @param {string} token
 */
export function decodeToken(token) {
  const parts = String(token).trim().split('.');
  if (parts.length !== 3 || !parts[1]) throw new TokenError('not a JWT (expected three dot-separated parts)');
  let payload;
  try {
    payload = JSON.parse(base64UrlDecode(parts[1]));
  } catch {
    throw new TokenError('the payload is not base64url JSON');
  }
  const businessId = Number(payload.business_id);
  if (!Number.isSafeInteger(businessId) || businessId <= 0) throw new TokenError('no business_id in the payload');
  const role = ROLES.includes(payload.role) ? payload.role : null;
  if (!role) throw new TokenError(`unknown role "${payload.role ?? ''}"`);
  const exp = typeof payload.exp === 'number' ? payload.exp : null;
  return { businessId, role, exp };
}

export function isExpired(claims, nowMs = Date.now()) {
  return claims.exp !== null && claims.exp * 1000 <= nowMs;
}

/** Operators and admins may start and cancel tasks; viewers only watch. */
export function canOperate(role) {
  return role === 'operator' || role === 'admin';
}

/** Deleting a task's record (and its per-item ledger) is for admins only. */
export function canDelete(role) {
  return role === 'admin';
}

export function getStoredToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function storeToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token.trim());
}

export function clearToken() {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* nothing stored */
  }
}

/**
 * `/?token=...` signs in: take the token out of the URL at once (history.replaceState) so it does
 * not stay in the address bar, the history, bookmarks or a Referer header. Returns the token or null.
 */
export function takeTokenFromUrl() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get('token');
  if (token === null) return null;
  url.searchParams.delete('token');
  const clean = url.pathname + (url.searchParams.toString() ? `?${url.searchParams}` : '') + url.hash;
  window.history.replaceState(window.history.state, '', clean);
  return token.trim() || null;
}
