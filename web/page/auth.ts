// The bearer token: where it is kept and what the page learns from it.
//
// The token lives in sessionStorage only (per tab, gone when the tab closes), never in
// localStorage: a token there would outlive the session and be readable by any later script on
// the origin. The payload is decoded without verification, only to show who is signed in and
// to scope localStorage entries by business; the API verifies the signature on every request.

const TOKEN_KEY = 'longtasks:token';
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface Claims {
  businessId: number;
  role: Role;
  exp: number | null;
}

export class TokenError extends Error {}

function base64UrlDecode(segment: string): string {
  const b64 = segment.replace(/-/g, '+').replace(/_/g, '/');
  const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
  const binary = atob(padded);
  // atob yields Latin-1 "binary": re-decode as UTF-8 so non-ASCII claims survive.
  return new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
}

/** A JWT's payload as claims; throws TokenError with a readable reason. */
export function decodeToken(token: string): Claims {
  const parts = token.trim().split('.');
  const body = parts[1];
  if (parts.length !== 3 || !body) throw new TokenError('not a JWT (expected three dot-separated parts)');
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(base64UrlDecode(body)) as Record<string, unknown>;
  } catch {
    throw new TokenError('the payload is not base64url JSON');
  }
  const businessId = Number(payload.business_id);
  if (!Number.isSafeInteger(businessId) || businessId <= 0) throw new TokenError('no business_id in the payload');
  const role = ROLES.find((r) => r === payload.role);
  if (!role) throw new TokenError(`unknown role "${typeof payload.role === 'string' ? payload.role : ''}"`);
  const exp = typeof payload.exp === 'number' ? payload.exp : null;
  return { businessId, role, exp };
}

export function isExpired(claims: Claims, nowMs = Date.now()): boolean {
  return claims.exp !== null && claims.exp * 1000 <= nowMs;
}

/** Operators and admins may start and cancel tasks; viewers only watch. */
export const canOperate = (role: Role): boolean => role === 'operator' || role === 'admin';

/** Deleting a task's record (and its per-item ledger) is for admins only. */
export const canDelete = (role: Role): boolean => role === 'admin';

export function getStoredToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function storeToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token.trim());
}

export function clearToken(): void {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* nothing stored */
  }
}

/**
 * `/#token=...` signs in. The token rides in the fragment, which a browser never sends: it
 * reaches no server, proxy or access log (a `?token=` query did, whole, in every log line of
 * the request). It leaves the address bar at once (history.replaceState), so neither the
 * history nor a bookmark keeps it; other fragment parameters stay.
 */
export function takeTokenFromUrl(): string | null {
  const url = new URL(window.location.href);
  const fragment = new URLSearchParams(url.hash.slice(1));
  const token = fragment.get('token');
  if (token === null) return null;
  fragment.delete('token');
  const rest = fragment.toString();
  window.history.replaceState(window.history.state, '', url.pathname + url.search + (rest ? `#${rest}` : ''));
  return token.trim() || null;
}
