// The REST client: every call to /api goes through here, so auth, timeouts and error shapes are
// handled in one place. See DESIGN.md "REST contract".

import { t } from './i18n.js';

const API_PREFIX = '/api';
const REQUEST_TIMEOUT_MS = 20_000;

export const TERMINAL_STATUSES = new Set(['completed', 'cancelled', 'failed']);
export const ACTIVE_STATUSES = new Set(['scheduled', 'running']);
export const TASK_TYPES = ['broadcast', 'receipt_delete', 'receipt_sync'];
export const TASK_STATUSES = ['scheduled', 'running', 'completed', 'cancelled', 'failed'];

export function isTerminal(task) {
  return TERMINAL_STATUSES.has(task?.status);
}

/**
 * Whether `next` may replace `prev`. Several feeds deliver the same task (list, business stream,
 * task stream, polls), so an older snapshot can arrive last. `version` grows with every change
 * (it is the SSE event id); without it, updated_at decides. A terminal task never comes back.
 */
export function isNewerSnapshot(prev, next) {
  if (isTerminal(prev) && !isTerminal(next)) return false;
  if (Number.isFinite(prev.version) && Number.isFinite(next.version)) return next.version >= prev.version;
  const a = Date.parse(prev.updated_at);
  const b = Date.parse(next.updated_at);
  return !(Number.isFinite(a) && Number.isFinite(b) && b < a);
}

/**
 * An HTTP failure with the server's `detail` kept as data:
 *  - `status`: HTTP status (0 for network failure/timeout)
 *  - `detail`: string, or FastAPI's 422 list [{loc, msg, type}]
 */
export class ApiError extends Error {
  constructor(status, detail, kind = 'http') {
    super(typeof detail === 'string' ? detail : `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
    this.kind = kind; // 'http' | 'network' | 'timeout'
  }

  /** FastAPI validation errors as [{field, message}], field being the body path without "body". */
  get fieldErrors() {
    if (!Array.isArray(this.detail)) return [];
    return this.detail.map((e) => {
      const loc = Array.isArray(e?.loc) ? e.loc.filter((p, i) => !(i === 0 && (p === 'body' || p === 'query'))) : [];
      return { field: loc.join('.'), path: loc, message: String(e?.msg ?? JSON.stringify(e)) };
    });
  }

  /** One readable line (or several, newline separated) for the user. */
  readable() {
    if (this.kind === 'network') return t('error.network');
    if (this.kind === 'timeout') return t('error.timeout');
    const detail = detailText(this.detail);
    switch (this.status) {
      case 403:
        return detail ? `${t('error.forbidden')} (${detail})` : t('error.forbidden');
      case 404:
        return t('error.notFound');
      case 409:
        return t('error.conflict', { detail });
      case 503:
        return t('error.unavailable', { detail });
      default:
        return t('error.http', { status: this.status, detail });
    }
  }
}

function detailText(detail) {
  if (detail === null || detail === undefined) return '';
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) {
    return new ApiError(422, detail).fieldErrors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join('\n');
  }
  if (typeof detail === 'object' && 'message' in detail) return String(detail.message);
  return JSON.stringify(detail);
}

/**
 * @param {{getToken: () => string|null, onUnauthorized: () => void}} deps
 *   onUnauthorized runs on any 401 so the page can drop the token and show the sign-in form.
 */
export function createApi({ getToken, onUnauthorized }) {
  async function request(method, path, { query, body } = {}) {
    const url = new URL(API_PREFIX + path, window.location.origin);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
    }
    const headers = { Accept: 'application/json' };
    const token = getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';

    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
    let res;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller.signal,
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch (err) {
      throw new ApiError(0, String(err?.message ?? err), err?.name === 'AbortError' ? 'timeout' : 'network');
    } finally {
      clearTimeout(timer);
    }

    if (res.status === 204) return null;
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = text; // a proxy's HTML error page, say: still show something
      }
    }
    if (!res.ok) {
      const detail = data && typeof data === 'object' && 'detail' in data ? data.detail : data || res.statusText;
      if (res.status === 401) onUnauthorized();
      throw new ApiError(res.status, detail);
    }
    return data;
  }

  /** URLs opened by the browser itself (EventSource, download links) cannot send headers. */
  function urlWithToken(path, query = {}) {
    const url = new URL(API_PREFIX + path, window.location.origin);
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
    }
    const token = getToken();
    if (token) url.searchParams.set('access_token', token);
    return url.pathname + url.search;
  }

  const id = (taskId) => encodeURIComponent(String(taskId));

  return {
    listTasks: ({ limit = 50, cursor, taskType, status } = {}) =>
      request('GET', '/long_tasks', { query: { limit, cursor, task_type: taskType, status } }),
    getTask: (taskId) => request('GET', `/long_tasks/${id(taskId)}`),
    cancelTask: async (taskId) => (await request('POST', `/long_tasks/${id(taskId)}/cancel`))?.task ?? null,
    deleteTask: (taskId) => request('DELETE', `/long_tasks/${id(taskId)}`),
    listItems: (taskId, { status = 'failed', limit = 50, cursor } = {}) =>
      request('GET', `/long_tasks/${id(taskId)}/items`, { query: { status, limit, cursor } }),

    startBroadcast: (payload) => request('POST', '/broadcasts', { body: payload }),
    startReceiptSync: (payload) => request('POST', '/receipts/sync', { body: payload }),
    startReceiptDelete: (payload) => request('POST', '/receipts/bulk_delete', { body: payload }),

    taskEventsUrl: (taskId) => urlWithToken(`/long_tasks/${id(taskId)}/events`),
    businessEventsUrl: () => urlWithToken('/long_tasks/events'),
    itemsCsvUrl: (taskId, status = 'failed') => urlWithToken(`/long_tasks/${id(taskId)}/items.csv`, { status }),
  };
}
