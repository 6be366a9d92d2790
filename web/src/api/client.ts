// The REST client: every call to /api goes through here, so auth, timeouts, error shapes and the
// URLs the browser opens by itself (SSE, CSV downloads) are built in one place.

import { t } from '../i18n/messages.js';
import type { Lang } from '../i18n/core.js';
import type {
  BroadcastRequest,
  BroadcastStarted,
  ItemPage,
  ReceiptDeleteRequest,
  ReceiptDeleteStarted,
  ReceiptSyncRequest,
  ReceiptSyncStarted,
  Task,
  TaskEnvelope,
  TaskPage,
  TaskStatus,
  TaskType,
  TicketOut,
  ValidationIssue,
} from './types.js';

const API_PREFIX = '/api';
const REQUEST_TIMEOUT_MS = 20_000;

export type ApiErrorKind = 'http' | 'network' | 'timeout';
/** The server's `detail`: a string, FastAPI's 422 list, or whatever a proxy answered. */
export type ErrorDetail = string | ValidationIssue[] | Record<string, unknown> | null;

export interface FieldError {
  field: string;
  path: (string | number)[];
  message: string;
}

/** An HTTP failure with the server's `detail` kept as data; `status` 0 for network failures. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: ErrorDetail,
    readonly kind: ApiErrorKind = 'http',
  ) {
    super(typeof detail === 'string' ? detail : `HTTP ${status}`);
    this.name = 'ApiError';
  }

  /** FastAPI validation errors as fields, the path without its leading "body"/"query". */
  get fieldErrors(): FieldError[] {
    if (!Array.isArray(this.detail)) return [];
    return this.detail.map((issue) => {
      const loc = Array.isArray(issue.loc) ? issue.loc.filter((p, i) => !(i === 0 && (p === 'body' || p === 'query'))) : [];
      return { field: loc.join('.'), path: loc, message: issue.msg };
    });
  }

  /** One readable line (or several, newline separated) for the user. */
  readable(lang?: Lang): string {
    if (this.kind === 'network') return t('error.network', {}, lang);
    if (this.kind === 'timeout') return t('error.timeout', {}, lang);
    const detail = detailText(this.detail);
    switch (this.status) {
      case 403:
        return detail ? `${t('error.forbidden', {}, lang)} (${detail})` : t('error.forbidden', {}, lang);
      case 404:
        return t('error.notFound', {}, lang);
      case 409:
        return t('error.conflict', { detail }, lang);
      case 503:
        return t('error.unavailable', { detail }, lang);
      default:
        return t('error.http', { status: this.status, detail }, lang);
    }
  }
}

function detailText(detail: ErrorDetail): string {
  if (detail === null) return '';
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) {
    return new ApiError(422, detail).fieldErrors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join('\n');
  }
  if ('message' in detail) return String(detail.message);
  return JSON.stringify(detail);
}

export function readableError(err: unknown, lang?: Lang): string {
  if (err instanceof ApiError) return err.readable(lang);
  return err instanceof Error ? err.message : String(err);
}

export interface ApiClientOptions {
  /** The service's origin, e.g. "https://tasks.example.com"; empty for the page's own origin. */
  baseUrl?: string;
  /** The bearer token, read at each request (it may change or be dropped). */
  getToken: () => string | null;
  /** Runs on every 401, e.g. to show a sign-in form. */
  onUnauthorized?: () => void;
  timeoutMs?: number;
}

type Query = Record<string, string | number | null | undefined>;

export interface ListTasksQuery {
  limit?: number;
  cursor?: string | null;
  taskType?: TaskType | '';
  status?: TaskStatus | '';
}

export interface ListItemsQuery {
  status?: string;
  limit?: number;
  cursor?: string | null;
}

export interface ApiClient {
  readonly baseUrl: string;
  listTasks(query?: ListTasksQuery): Promise<TaskPage>;
  getTask(taskId: number): Promise<Task>;
  /** 202 while running (cancelling), 200 once terminal: the task either way. */
  cancelTask(taskId: number): Promise<Task>;
  deleteTask(taskId: number): Promise<void>;
  listItems(taskId: number, query?: ListItemsQuery): Promise<ItemPage>;
  startBroadcast(body: BroadcastRequest): Promise<BroadcastStarted>;
  startReceiptSync(body: ReceiptSyncRequest): Promise<ReceiptSyncStarted>;
  startReceiptDelete(body: ReceiptDeleteRequest): Promise<ReceiptDeleteStarted>;
  /**
   * URLs the browser opens itself (EventSource, a download link) cannot carry headers, and a
   * URL ends up in logs and history: each carries a ticket minted for it just now (POST
   * /api/tickets: that path only, GET only, for about a minute), never the token. Open them
   * at once; mint again for a later open.
   */
  taskEventsUrl(taskId: number): Promise<string>;
  businessEventsUrl(): Promise<string>;
  itemsCsvUrl(taskId: number, status?: string): Promise<string>;
  /** The CSV's address without any credential: what a link shows (a click mints a ticket). */
  itemsCsvPath(taskId: number, status?: string): string;
}

export function createApiClient(options: ApiClientOptions): ApiClient {
  const baseUrl = (options.baseUrl ?? '').replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? REQUEST_TIMEOUT_MS;
  const sameOrigin = baseUrl === '';

  function url(path: string, query: Query = {}): URL {
    const origin = sameOrigin ? globalThis.location.origin : baseUrl;
    const result = new URL(`${baseUrl}${API_PREFIX}${path}`, origin);
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '') result.searchParams.set(k, String(v));
    }
    return result;
  }

  async function request<T>(method: string, path: string, init: { query?: Query; body?: unknown } = {}): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    const token = options.getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (init.body !== undefined) headers['Content-Type'] = 'application/json';

    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    let res: Response;
    try {
      res = await fetch(url(path, init.query), {
        method,
        headers,
        body: init.body === undefined ? null : JSON.stringify(init.body),
        signal: controller.signal,
        // Bearer tokens, not cookies: a cross-origin host needs no credentialed CORS.
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch (err) {
      const aborted = err instanceof Error && err.name === 'AbortError';
      throw new ApiError(0, err instanceof Error ? err.message : String(err), aborted ? 'timeout' : 'network');
    } finally {
      clearTimeout(timer);
    }

    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let data: unknown = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = text; // a proxy's HTML error page, say: still show something
      }
    }
    if (!res.ok) {
      const detail =
        data && typeof data === 'object' && 'detail' in data ? (data.detail as ErrorDetail) : ((data as string | null) ?? res.statusText);
      if (res.status === 401) options.onUnauthorized?.();
      throw new ApiError(res.status, detail);
    }
    return data as T;
  }

  function href(result: URL): string {
    return sameOrigin ? result.pathname + result.search : result.href;
  }

  // The one place a credential goes into a URL: a ticket, minted for this path by an
  // authenticated POST. The path is the API's own (`/api/...`), whatever the base URL's.
  async function ticketedUrl(path: string, query: Query = {}): Promise<string> {
    const minted = await request<TicketOut>('POST', '/tickets', { body: { path: `${API_PREFIX}${path}` } });
    const result = url(path, query);
    result.searchParams.set('ticket', minted.ticket);
    return href(result);
  }

  const id = (taskId: number) => encodeURIComponent(String(taskId));

  return {
    baseUrl,
    listTasks: ({ limit = 50, cursor, taskType, status } = {}) =>
      request<TaskPage>('GET', '/long_tasks', { query: { limit, cursor, task_type: taskType, status } }),
    getTask: (taskId) => request<Task>('GET', `/long_tasks/${id(taskId)}`),
    cancelTask: async (taskId) => (await request<TaskEnvelope>('POST', `/long_tasks/${id(taskId)}/cancel`)).task,
    deleteTask: async (taskId) => {
      await request<unknown>('DELETE', `/long_tasks/${id(taskId)}`);
    },
    listItems: (taskId, { status = 'failed', limit = 50, cursor } = {}) =>
      request<ItemPage>('GET', `/long_tasks/${id(taskId)}/items`, { query: { status, limit, cursor } }),
    startBroadcast: (body) => request<BroadcastStarted>('POST', '/broadcasts', { body }),
    startReceiptSync: (body) => request<ReceiptSyncStarted>('POST', '/receipts/sync', { body }),
    startReceiptDelete: (body) => request<ReceiptDeleteStarted>('POST', '/receipts/bulk_delete', { body }),
    taskEventsUrl: (taskId) => ticketedUrl(`/long_tasks/${id(taskId)}/events`),
    businessEventsUrl: () => ticketedUrl('/long_tasks/events'),
    itemsCsvUrl: (taskId, status = 'failed') => ticketedUrl(`/long_tasks/${id(taskId)}/items.csv`, { status }),
    itemsCsvPath: (taskId, status = 'failed') => href(url(`/long_tasks/${id(taskId)}/items.csv`, { status })),
  };
}
