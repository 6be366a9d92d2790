// The service page's composition root: sign-in, the task list, live updates, persistence.
//
// Data flow: every snapshot (a list page, the business stream, a tracked task's own stream or
// poll, a start or cancel answer, a placeholder restored from localStorage) goes into the store
// (`receive`); the page renders what the store says to show (`render`, on every change). The
// rest of this module holds what is not state but I/O: the token, the feeds, the timers.

import { ApiError, createApiClient, readableError } from '../src/api/client';
import { TASK_STATUSES, TASK_TYPES, type Task, type TaskType } from '../src/api/types';
import { defineLongTaskCard, type CardTask, type LongTaskCard } from '../src/card/element';
import { getLang, LANG_CHANGE_EVENT, setLang } from '../src/i18n/core';
import { t as cardT, statusLabel, typeLabel } from '../src/i18n/messages';
import { LiveFeed, LIST_POLL_MS, TASK_POLL_MS } from '../src/live';
import { createBusinessPersistence, type BusinessPersistence } from '../src/persistence';
import { asTask, isTerminal } from '../src/snapshots';
import { TaskStore } from '../src/store';
import {
  canDelete,
  canOperate,
  clearToken,
  decodeToken,
  getStoredToken,
  isExpired,
  storeToken,
  takeTokenFromUrl,
  TokenError,
  type Claims,
} from './auth';
import { setupStartForms } from './forms';
import { applyLang } from './i18n';
import { t } from './messages';

defineLongTaskCard();

const PAGE_SIZE = 50;
// Browsers allow ~6 HTTP/1.1 connections per origin and each EventSource holds one. Past this
// many per-task streams (plus the business stream) tracked tasks poll instead, so ordinary
// requests still get a connection.
const MAX_TASK_STREAMS = 3;
const PRUNE_EVERY_MS = 30_000;
const DEFAULT_STALL_AFTER_S = 30;

function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing from the page`);
  return found as T;
}

function readStallAfterS(): number {
  const n = Number(document.querySelector<HTMLMetaElement>('meta[name="longtasks-stall-after-s"]')?.content);
  return Number.isFinite(n) && n > 0 ? n : DEFAULT_STALL_AFTER_S;
}

// ---- state and I/O handles --------------------------------------------------------------------

const store = new TaskStore();
const stallAfterS = readStallAfterS();
const cards = new Map<number, LongTaskCard>(); // the rendered cards, by task id
const watchers = new Map<number, { feed: LiveFeed; keep: boolean }>(); // one task's own feed
let token: string | null = null;
let claims: Claims | null = null;
let persistence: BusinessPersistence | null = null;
let businessFeed: LiveFeed | null = null;
let timers: ReturnType<typeof setTimeout>[] = [];
let listRequest = 0; // answers to superseded list requests are dropped
let listLoading = false;
let listRetriedAt = 0;
let listRetryTimer: ReturnType<typeof setTimeout> | undefined;

const api = createApiClient({
  getToken: () => token,
  onUnauthorized: () => signOut(t('auth.sessionEnded')),
});

const startForms = setupStartForms(api, onTaskStarted);

// ---- snapshots in -----------------------------------------------------------------------------

function receive(snapshot: CardTask, how: { show?: boolean } = {}): void {
  if (claims) store.receive(snapshot, how);
}

function announceFinished(task: CardTask): void {
  const title = cardT('card.title', { type: typeLabel(task.task_type), id: task.id });
  announce(t('list.terminalAnnounce', { title, status: statusLabel(task.status) }));
}

/** The tracked tasks' statuses go to localStorage as they change (a write only on a change). */
function persistTracked(): void {
  const { tracked, tasks } = store.state;
  for (const id of tracked) {
    const task = tasks.get(id);
    if (task && !task.placeholder) persistence?.refresh(task);
  }
}

/** What localStorage tracks (expired entries dropped on the way) -> the store. */
function syncTracked(): void {
  store.setTracked(persistence ? persistence.listAll().map((e) => e.taskId) : []);
}

// ---- views out --------------------------------------------------------------------------------

function render(): void {
  const list = $('task-list');
  const views = claims ? store.visible() : [];
  const wanted = new Set(views.map((v) => v.task.id));
  for (const id of [...cards.keys()]) if (!wanted.has(id)) removeCard(id);
  let previous: Element | null = null;
  for (const { task, tracked } of views) {
    let card = cards.get(task.id);
    if (!card) {
      card = createCard();
      cards.set(task.id, card);
    }
    if (card.task !== task) card.task = task;
    if (card.tracked !== tracked) {
      card.tracked = tracked;
      card.render();
    }
    // Newest first (the store's order); move a card only when it is out of place.
    const expected: Element | null = previous ? previous.nextElementSibling : list.firstElementChild;
    if (expected !== card) list.insertBefore(card, expected);
    previous = card;
  }
  const state = store.state;
  $('task-list-empty').hidden = cards.size > 0 || listLoading;
  const more = $<HTMLButtonElement>('task-list-more');
  more.hidden = !state.nextCursor;
  const errorBox = $('task-list-error');
  errorBox.hidden = state.listError === null;
  errorBox.textContent = state.listError === null ? '' : t('list.loadError', { reason: state.listError });
  renderDismissedButton();
  syncWatchers();
}

function createCard(): LongTaskCard {
  const card = document.createElement('long-task-card');
  const role = claims?.role ?? 'viewer';
  card.canCancel = canOperate(role);
  card.canDelete = canDelete(role);
  card.stallAfterS = stallAfterS;
  card.actions = cardActions;
  return card;
}

function removeCard(id: number): void {
  const card = cards.get(id);
  if (!card) return;
  // Keep keyboard users in place: move focus to the neighbour (or the list heading).
  const hadFocus = card.contains(document.activeElement);
  const neighbour = card.nextElementSibling ?? card.previousElementSibling;
  card.remove();
  cards.delete(id);
  if (hadFocus) (neighbour?.querySelector<HTMLElement>('button:not([hidden])') ?? $('tasks')).focus();
}

const cardActions = {
  async cancel(task: CardTask): Promise<Task> {
    const updated = await api.cancelTask(task.id);
    receive(updated);
    // Follow the task to its end even if the business stream is down.
    const latest = store.state.tasks.get(task.id);
    if (latest && !isTerminal(latest)) watch(latest, { keep: !store.isTracked(task.id) });
    return updated;
  },
  dismiss(task: CardTask): void {
    persistence?.clear(task);
    syncTracked();
    stopWatching(task.id);
    store.dismiss(task.id);
    saveDismissed();
  },
  async remove(task: CardTask): Promise<void> {
    await api.deleteTask(task.id);
    forgetTask(task);
  },
  loadFailures: (task: CardTask, cursor: string | undefined) => api.listItems(task.id, { status: 'failed', limit: PAGE_SIZE, cursor }),
  csvPath: (task: CardTask) => api.itemsCsvPath(task.id, 'failed'),
  csvUrl: (task: CardTask) => api.itemsCsvUrl(task.id, 'failed'),
};

function forgetTask(task: { id: number; task_type: TaskType }): void {
  persistence?.clear(task);
  syncTracked();
  stopWatching(task.id);
  store.forget(task.id);
}

function announce(text: string): void {
  const box = $('announcer');
  box.textContent = '';
  // A fresh text node after a tick makes screen readers announce repeats too.
  setTimeout(() => {
    box.textContent = text;
  }, 50);
}

// ---- sign in / out ----------------------------------------------------------------------------

function fillFilters(): void {
  const fill = <V extends string>(select: HTMLSelectElement, values: readonly V[], label: (v: V) => string, all: string) => {
    const chosen = select.value;
    select.replaceChildren(new Option(all, ''), ...values.map((v) => new Option(label(v), v)));
    select.value = chosen;
  };
  fill($<HTMLSelectElement>('filter-type'), TASK_TYPES, (v) => typeLabel(v), t('type.all'));
  fill($<HTMLSelectElement>('filter-status'), TASK_STATUSES, (v) => statusLabel(v), t('status.all'));
}

function boot(): void {
  applyLang();
  fillFilters();
  store.subscribe(() => {
    persistTracked();
    render();
  });
  store.onFinished(announceFinished);
  $('lang-toggle').addEventListener('click', () => setLang(getLang() === 'he' ? 'en' : 'he'));
  document.addEventListener(LANG_CHANGE_EVENT, () => {
    applyLang();
    fillFilters();
    renderWhoami();
    renderLiveStatus();
    renderDismissedButton();
  });
  $('signout').addEventListener('click', () => signOut());
  $('signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = $<HTMLTextAreaElement>('token-input');
    const value = input.value.trim();
    if (!value) {
      showSigninError(t('auth.invalid', { reason: '—' }));
      return;
    }
    if (trySignIn(value)) input.value = '';
  });
  $('task-filters').addEventListener('change', () => {
    const taskType = TASK_TYPES.find((v) => v === $<HTMLSelectElement>('filter-type').value) ?? '';
    const status = TASK_STATUSES.find((v) => v === $<HTMLSelectElement>('filter-status').value) ?? '';
    store.setFilters({ taskType, status });
    void loadList({ reset: true });
  });
  $('task-filters').addEventListener('submit', (ev) => ev.preventDefault());
  $('task-list-refresh').addEventListener('click', () => void loadList({ reset: true }));
  $('task-list-more').addEventListener('click', () => void loadList({ reset: false }));
  $('show-dismissed').addEventListener('click', () => {
    store.setDismissed([]);
    saveDismissed();
    void loadList({ reset: true });
  });

  // Close every stream when the page is hidden for navigation: a page kept in the back/forward
  // cache would hold its EventSource connections, and with ~6 connections per origin a few of
  // those starve the next page's requests.
  window.addEventListener('pagehide', suspendLive);
  window.addEventListener('pageshow', (ev) => {
    if (ev.persisted && claims) resumeLive();
  });

  // A token in the URL wins over a stored one: it is how a link "signs in as".
  const fromUrl = takeTokenFromUrl();
  const stored = fromUrl ?? getStoredToken();
  if (!stored) showSignin();
  else trySignIn(stored); // on failure it shows the sign-in form with the reason
}

function showSigninError(message?: string): void {
  const box = $('signin-error');
  box.textContent = message ?? '';
  box.hidden = !message;
}

function showSignin(message?: string): void {
  $('app').hidden = true;
  $('signin').hidden = false;
  $('whoami').hidden = true;
  $('signout').hidden = true;
  showSigninError(message);
}

/** Validate and adopt a token; false (with the reason shown) if it cannot be used. */
function trySignIn(raw: string): boolean {
  let decoded: Claims;
  try {
    decoded = decodeToken(raw);
  } catch (err) {
    clearToken();
    showSignin(t('auth.invalid', { reason: err instanceof TokenError ? err.message : String(err) }));
    return false;
  }
  if (isExpired(decoded)) {
    clearToken();
    showSignin(t('auth.expired'));
    return false;
  }
  storeToken(raw);
  token = raw.trim();
  claims = decoded;
  persistence = createBusinessPersistence(decoded.businessId, TASK_TYPES);
  store.setDismissed(loadDismissed());
  syncTracked();

  showSigninError('');
  $('signin').hidden = true;
  $('app').hidden = false;
  $('signout').hidden = false;
  renderWhoami();
  const operate = canOperate(decoded.role);
  startForms.setEnabled(operate);
  $('readonly-note').hidden = operate;

  restoreTrackedTasks();
  void loadList({ reset: true });
  startBusinessFeed();
  timers.push(setInterval(tickCards, 1000));
  timers.push(setInterval(pruneTracked, PRUNE_EVERY_MS));
  if (decoded.exp) {
    // Sign out when the token expires instead of letting every request fail with 401.
    const ms = decoded.exp * 1000 - Date.now();
    if (ms < 2 ** 31 - 1) timers.push(setTimeout(() => signOut(t('auth.expired')), ms));
  }
  return true;
}

function signOut(message?: string): void {
  if (!token && !message) {
    showSignin();
    return;
  }
  suspendLive();
  for (const timer of timers) clearTimeout(timer);
  timers = [];
  listRequest++;
  // Tracked tasks stay in localStorage (they hold no secrets): signing in again to the same
  // business re-opens their cards, as a reload would.
  token = null;
  claims = null;
  persistence = null;
  store.reset();
  clearToken();
  showSignin(message);
}

function renderWhoami(): void {
  if (!claims) return;
  const box = $('whoami');
  box.textContent = t('auth.whoami', { business: claims.businessId, role: t(`role.${claims.role}`) });
  box.hidden = false;
}

// ---- dismissed tasks (this tab only) ----------------------------------------------------------
// Dismissing hides a card; without remembering that, the next list load would show it again.
// sessionStorage: it is a per-tab view choice, not something to carry across sessions.

const dismissedKey = () => `longtasks:dismissed:${claims?.businessId ?? 0}`;

function loadDismissed(): number[] {
  try {
    const ids: unknown = JSON.parse(sessionStorage.getItem(dismissedKey()) ?? '[]');
    return Array.isArray(ids) ? ids.map(Number).filter(Number.isSafeInteger) : [];
  } catch {
    return [];
  }
}

function saveDismissed(): void {
  try {
    sessionStorage.setItem(dismissedKey(), JSON.stringify([...store.state.dismissed]));
  } catch {
    /* best effort */
  }
  renderDismissedButton();
}

function renderDismissedButton(): void {
  const button = $('show-dismissed');
  const count = claims ? store.state.dismissed.size : 0;
  button.hidden = count === 0;
  button.textContent = t('list.showDismissed', { count });
}

// ---- the task list ----------------------------------------------------------------------------

function setListLoading(loading: boolean): void {
  listLoading = loading;
  $('task-list').setAttribute('aria-busy', String(loading));
  $('task-list-loading').hidden = !loading;
  $<HTMLButtonElement>('task-list-more').disabled = loading;
}

async function loadList({ reset }: { reset: boolean }): Promise<void> {
  const seq = ++listRequest;
  setListLoading(true);
  const { filters, nextCursor } = store.state;
  try {
    const page = await api.listTasks({
      limit: PAGE_SIZE,
      cursor: reset ? undefined : nextCursor,
      taskType: filters.taskType,
      status: filters.status,
    });
    if (seq !== listRequest) return;
    store.listLoaded(page, { reset });
  } catch (err) {
    if (seq !== listRequest) return;
    if (err instanceof ApiError && err.status === 401) return; // signOut already ran
    store.listFailed(readableError(err));
  } finally {
    if (seq === listRequest) {
      setListLoading(false);
      render();
    }
  }
}

/**
 * The business feed delivers again after a list load failed: load the list now. Until then no
 * untracked task (not even a new one) is shown, since the store knows no loaded range.
 */
function retryFailedList(): void {
  if (store.state.listError === null || listLoading || listRetryTimer !== undefined) return;
  // A list endpoint that keeps failing while the stream works is retried every few seconds at
  // most; a delivery within those seconds schedules the retry rather than dropping it, since
  // it may be the last one (the task finished, the stream goes quiet).
  const wait = Math.max(0, listRetriedAt + LIST_POLL_MS - Date.now());
  listRetryTimer = setTimeout(() => {
    listRetryTimer = undefined;
    if (store.state.listError === null || listLoading) return;
    listRetriedAt = Date.now();
    void loadList({ reset: true });
  }, wait);
}

function tickCards(): void {
  for (const card of cards.values()) card.tick();
}

/** Drop expired localStorage entries; their cards lose the "tracked" mark. */
function pruneTracked(): void {
  syncTracked();
}

// ---- tracked tasks (localStorage) -------------------------------------------------------------

/** After a reload: show the tracked tasks' cards at once, then fetch their real state. */
function restoreTrackedTasks(): void {
  for (const entry of persistence?.listAll() ?? []) {
    if (!store.state.tasks.has(entry.taskId)) {
      receive({ id: entry.taskId, task_type: entry.taskType, status: entry.status, placeholder: true }, { show: true });
    }
    api.getTask(entry.taskId).then(
      (task) => receive(task, { show: true }),
      (err: unknown) => {
        if (err instanceof ApiError && err.status === 404) forgetTask({ id: entry.taskId, task_type: entry.taskType });
      },
    );
  }
}

function onTaskStarted(task: Task): void {
  persistence?.save(task);
  syncTracked();
  const { filters } = store.state;
  if ((filters.taskType && filters.taskType !== task.task_type) || (filters.status && filters.status !== task.status)) {
    // Show what was just started rather than leave it hidden behind a filter.
    $<HTMLSelectElement>('filter-type').value = '';
    $<HTMLSelectElement>('filter-status').value = '';
    store.setFilters({ taskType: '', status: '' });
    void loadList({ reset: true });
  }
  receive(task, { show: true });
  announce(t('start.started', { id: task.id }));
}

// ---- live updates -----------------------------------------------------------------------------

function streamCount(): number {
  let n = 0;
  for (const { feed } of watchers.values()) if (feed.mode === 'stream' || feed.mode === 'connecting') n++;
  return n;
}

/** Start and stop per-task feeds to match what the store says is followed. */
function syncWatchers(): void {
  const followed = store.followed();
  const ids = new Set(followed.map((task) => task.id));
  for (const [id, watcher] of [...watchers]) {
    const task = store.state.tasks.get(id);
    if (!task || isTerminal(task) || (!ids.has(id) && !watcher.keep)) stopWatching(id);
  }
  for (const task of followed) watch(task);
}

/** Follow one task until it ends: its own SSE stream, or polling every 2.5 s. */
function watch(task: CardTask, { keep = false }: { keep?: boolean } = {}): void {
  const id = task.id;
  if (watchers.has(id) || isTerminal(task)) return;
  const feed = new LiveFeed<unknown>({
    streamUrl: () => api.taskEventsUrl(id),
    poll: () => api.getTask(id),
    pollMs: TASK_POLL_MS,
    streamAllowed: streamCount() < MAX_TASK_STREAMS,
    onData: (data) => {
      const snapshot = asTask(data);
      if (snapshot) receive(snapshot);
    },
    isDone: (data) => isTerminal(asTask(data)),
    onPollError: (err) => {
      if (err instanceof ApiError && err.status === 404) {
        forgetTask({ id, task_type: store.state.tasks.get(id)?.task_type ?? task.task_type });
        return true;
      }
      return err instanceof ApiError && (err.status === 401 || err.status === 403);
    },
    onMode: (mode) => {
      if (mode === 'stopped' && watchers.get(id)?.feed === feed) watchers.delete(id);
    },
  });
  // A feed started for a cancel outlives the localStorage prune.
  watchers.set(id, { feed, keep });
  feed.start();
}

function stopWatching(id: number): void {
  const watcher = watchers.get(id);
  if (!watcher) return;
  watchers.delete(id);
  watcher.feed.stop();
}

function startBusinessFeed(): void {
  businessFeed?.stop();
  const feed = new LiveFeed<unknown>({
    streamUrl: () => api.businessEventsUrl(),
    // Fallback: re-read the first page every few seconds; new and changed tasks come with it.
    poll: async () => {
      const { filters } = store.state;
      const page = await api.listTasks({ limit: PAGE_SIZE, taskType: filters.taskType, status: filters.status });
      retryFailedList();
      for (const task of page.items) receive(task);
      return undefined;
    },
    pollMs: LIST_POLL_MS,
    onData: (data) => {
      retryFailedList();
      const task = asTask(data);
      if (task) receive(task);
    },
    onPollError: (err) => err instanceof ApiError && (err.status === 401 || err.status === 403),
    onMode: (mode) => {
      renderLiveStatus();
      // Connected again: the list is likely reachable too. Waiting for the stream's first event
      // is not enough: on connecting it sends the active tasks only, which may be none.
      if (mode === 'stream') retryFailedList();
    },
  });
  businessFeed = feed;
  feed.start();
}

function suspendLive(): void {
  businessFeed?.stop();
  businessFeed = null;
  for (const id of [...watchers.keys()]) stopWatching(id);
}

function resumeLive(): void {
  startBusinessFeed();
  syncWatchers();
  void loadList({ reset: true }); // whatever changed while the page slept
}

function renderLiveStatus(): void {
  const mode = businessFeed?.mode ?? 'stopped';
  const box = $('live-status');
  box.dataset.mode = mode;
  const keys = { stream: 'list.liveStream', connecting: 'list.liveConnecting', polling: 'list.livePolling', stopped: 'list.liveOff' } as const;
  box.textContent = t(keys[mode]);
}

boot();
