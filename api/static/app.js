// The page's composition root: sign-in, the task list, live updates and persistence.
//
// Data flow: every task snapshot — from the list endpoint, the business-wide SSE stream, a
// per-task stream or poll, a start form, a cancel answer — goes through upsertTask(). That one
// function keeps the list in order, feeds the card, and keeps localStorage in step, so the
// sources can overlap (they do: a tracked task is on the business stream *and* its own) without
// disagreeing.

import { t, label, applyLang, setLang, getLang } from './i18n.js';
import { createApi, isTerminal, isNewerSnapshot as isNewer, ApiError } from './api.js';
import { decodeToken, isExpired, canOperate, canDelete, getStoredToken, storeToken, clearToken, takeTokenFromUrl, TokenError } from './auth.js';
import { createBusinessPersistence } from './persistence.js';
import { LiveFeed, LIST_POLL_MS, TASK_POLL_MS } from './live.js';
import { setupStartForms } from './forms.js';
import './status-card.js';

const PAGE_SIZE = 50;
// Browsers allow ~6 HTTP/1.1 connections per origin and each EventSource holds one. Past this
// many per-task streams (plus the business stream) tracked tasks poll instead, so ordinary
// requests still get a connection.
const MAX_TASK_STREAMS = 3;
const PRUNE_EVERY_MS = 30_000;
const DEFAULT_STALL_AFTER_S = 30;

const $ = (id) => document.getElementById(id);

function readStallAfterS() {
  const raw = document.querySelector('meta[name="longtasks-stall-after-s"]')?.content;
  const n = Number(raw);
  return Number.isFinite(n) && n > 0 ? n : DEFAULT_STALL_AFTER_S;
}

/** Unwrap `{task: {...}}` too: a stream or endpoint that wraps its snapshot still works. */
function asTask(data) {
  const task = data && typeof data === 'object' && 'task' in data && data.task ? data.task : data;
  return task && typeof task === 'object' && task.id !== undefined && task.status ? task : null;
}

// ---- session state ----------------------------------------------------------------------------

const session = {
  token: null,
  claims: null, // {businessId, role, exp}
  persistence: null,
  filters: { taskType: '', status: '' },
  nextCursor: null,
  lowestLoadedId: Infinity, // tasks below this id belong to pages not loaded yet
  listFailed: false, // the last list load failed: nothing but tracked tasks is shown
  listRetriedAt: 0,
  listRequest: 0, // sequence number: answers to superseded list requests are dropped
  cards: new Map(), // id -> <long-task-card> currently in the list
  tasks: new Map(), // id -> latest snapshot seen (shown or not)
  watchers: new Map(), // id -> LiveFeed for one task
  businessFeed: null,
  dismissed: new Set(),
  timers: [],
};

const stallAfterS = readStallAfterS();

const api = createApi({
  getToken: () => session.token,
  onUnauthorized: () => signOut(t('auth.sessionEnded')),
});

const startForms = setupStartForms(api, onTaskStarted);

// ---- sign in / out ----------------------------------------------------------------------------

function boot() {
  applyLang();
  $('lang-toggle').addEventListener('click', () => setLang(getLang() === 'he' ? 'en' : 'he'));
  document.addEventListener('longtasks:langchange', () => {
    renderWhoami();
    renderLiveStatus();
    renderDismissedButton();
  });
  $('signout').addEventListener('click', () => signOut());
  $('signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = $('token-input').value.trim();
    if (!token) {
      showSigninError(t('auth.invalid', { reason: '—' }));
      return;
    }
    if (trySignIn(token)) $('token-input').value = '';
  });
  $('task-filters').addEventListener('change', () => {
    session.filters = { taskType: $('filter-type').value, status: $('filter-status').value };
    loadList({ reset: true });
  });
  $('task-filters').addEventListener('submit', (ev) => ev.preventDefault());
  $('task-list-refresh').addEventListener('click', () => loadList({ reset: true }));
  $('task-list-more').addEventListener('click', () => loadList({ reset: false }));
  $('show-dismissed').addEventListener('click', () => {
    session.dismissed.clear();
    saveDismissed();
    loadList({ reset: true });
  });

  // Close every stream when the page is hidden for navigation. A page kept in the back/forward
  // cache would otherwise hold its EventSource connections open, and with the browser's ~6
  // connections per origin a few of those starve the next page's requests.
  window.addEventListener('pagehide', suspendLive);
  window.addEventListener('pageshow', (ev) => {
    if (ev.persisted && session.claims) resumeLive();
  });

  // A token in the URL wins over a stored one: it is how a link "signs in as".
  const fromUrl = takeTokenFromUrl();
  const token = fromUrl ?? getStoredToken();
  if (!token) showSignin();
  else trySignIn(token); // on failure it shows the sign-in form with the reason
}

function showSigninError(message) {
  const box = $('signin-error');
  box.textContent = message ?? '';
  box.hidden = !message;
}

function showSignin(message) {
  $('app').hidden = true;
  $('signin').hidden = false;
  $('whoami').hidden = true;
  $('signout').hidden = true;
  showSigninError(message);
}

/** Validate and adopt a token. Returns false (and shows why) if it cannot be used. */
function trySignIn(token) {
  let claims;
  try {
    claims = decodeToken(token);
  } catch (err) {
    clearToken();
    showSignin(t('auth.invalid', { reason: err instanceof TokenError ? err.message : String(err) }));
    return false;
  }
  if (isExpired(claims)) {
    clearToken();
    showSignin(t('auth.expired'));
    return false;
  }
  storeToken(token);
  session.token = token.trim();
  session.claims = claims;
  session.persistence = createBusinessPersistence(claims.businessId);
  session.dismissed = loadDismissed();
  renderDismissedButton(); // after a reload too: the hidden cards can be brought back

  showSigninError('');
  $('signin').hidden = true;
  $('app').hidden = false;
  $('signout').hidden = false;
  renderWhoami();
  const operate = canOperate(claims.role);
  startForms.setEnabled(operate);
  $('readonly-note').hidden = operate;

  restoreTrackedTasks();
  loadList({ reset: true });
  startBusinessFeed();
  session.timers.push(setInterval(tickCards, 1000));
  session.timers.push(setInterval(pruneTracked, PRUNE_EVERY_MS));
  if (claims.exp) {
    // Sign out when the token expires instead of letting every request fail with 401.
    const ms = claims.exp * 1000 - Date.now();
    if (ms < 2 ** 31 - 1) session.timers.push(setTimeout(() => signOut(t('auth.expired')), ms));
  }
  return true;
}

function signOut(message) {
  if (!session.token && !message) return showSignin();
  session.businessFeed?.stop();
  session.businessFeed = null;
  for (const w of session.watchers.values()) w.stop();
  session.watchers.clear();
  for (const timer of session.timers) {
    clearInterval(timer);
    clearTimeout(timer);
  }
  session.timers = [];
  session.cards.clear();
  session.tasks.clear();
  session.listRequest++;
  $('task-list').replaceChildren();
  // Tracked tasks stay in localStorage (they hold no secrets): signing in again to the same
  // business re-opens their cards, as a reload would.
  session.token = null;
  session.claims = null;
  session.persistence = null;
  clearToken();
  showSignin(message);
}

function renderWhoami() {
  const c = session.claims;
  if (!c) return;
  const box = $('whoami');
  box.textContent = t('auth.whoami', { business: c.businessId, role: label('role', c.role) });
  box.hidden = false;
}

// ---- dismissed tasks (this tab only) ----------------------------------------------------------
// Dismissing hides a card; without remembering that, the next list load would show it again.
// sessionStorage: it is a per-tab view choice, not something to carry across sessions.

function dismissedKey() {
  return `longtasks:dismissed:${session.claims.businessId}`;
}

function loadDismissed() {
  try {
    const ids = JSON.parse(sessionStorage.getItem(dismissedKey()) ?? '[]');
    return new Set(Array.isArray(ids) ? ids.map(Number).filter(Number.isSafeInteger) : []);
  } catch {
    return new Set();
  }
}

function saveDismissed() {
  try {
    sessionStorage.setItem(dismissedKey(), JSON.stringify([...session.dismissed]));
  } catch {
    /* best effort */
  }
  renderDismissedButton();
}

function renderDismissedButton() {
  const button = $('show-dismissed');
  button.hidden = session.dismissed.size === 0;
  button.textContent = t('list.showDismissed', { count: session.dismissed.size });
}

// ---- the task list ----------------------------------------------------------------------------

function matchesFilters(task) {
  const { taskType, status } = session.filters;
  return (!taskType || task.task_type === taskType) && (!status || task.status === status);
}

async function loadList({ reset }) {
  const seq = ++session.listRequest;
  const list = $('task-list');
  if (reset) {
    session.nextCursor = null;
    session.lowestLoadedId = Infinity;
  }
  list.setAttribute('aria-busy', 'true');
  $('task-list-loading').hidden = false;
  $('task-list-more').disabled = true;
  try {
    const page = await api.listTasks({
      limit: PAGE_SIZE,
      cursor: reset ? undefined : session.nextCursor,
      taskType: session.filters.taskType,
      status: session.filters.status,
    });
    if (seq !== session.listRequest) return;
    session.listFailed = false;
    $('task-list-error').hidden = true;
    const items = (page?.items ?? []).map(asTask).filter(Boolean);
    if (reset) {
      // Keep the cards that stay (their rate samples, open panels and focus survive a refresh);
      // tracked tasks stay even when they are beyond the first page.
      const keep = new Set(items.map((task) => Number(task.id)));
      for (const [id, task] of session.tasks) if (isTracked(task)) keep.add(id);
      for (const id of [...session.cards.keys()]) if (!keep.has(id)) removeCard(id);
    }
    session.nextCursor = page?.next_cursor ?? null;
    for (const task of items) session.lowestLoadedId = Math.min(session.lowestLoadedId, Number(task.id));
    if (!session.nextCursor) session.lowestLoadedId = -Infinity; // everything is loaded
    for (const task of items) upsertTask(task, { fromList: true });
    if (reset) {
      for (const task of session.tasks.values()) if (isTracked(task)) upsertTask(task, { force: true });
    }
  } catch (err) {
    if (seq !== session.listRequest) return;
    if (err instanceof ApiError && err.status === 401) return; // signOut already ran
    session.listFailed = true;
    const box = $('task-list-error');
    box.textContent = t('list.loadError', { reason: err instanceof ApiError ? err.readable() : String(err) });
    box.hidden = false;
  } finally {
    if (seq === session.listRequest) {
      list.setAttribute('aria-busy', 'false');
      $('task-list-loading').hidden = true;
      $('task-list-more').disabled = false;
      $('task-list-more').hidden = !session.nextCursor;
      renderEmptyState();
    }
  }
}

/**
 * The business feed delivers again after a list load failed: load the list now. Until then
 * lowestLoadedId stays at Infinity, so no untracked task (not even a new one) would be shown.
 */
function retryFailedList() {
  if (!session.listFailed || $('task-list').getAttribute('aria-busy') === 'true') return;
  // A list endpoint that keeps failing while the stream works is retried every few seconds,
  // not at every event.
  if (Date.now() - session.listRetriedAt < LIST_POLL_MS) return;
  session.listRetriedAt = Date.now();
  loadList({ reset: true });
}

function renderEmptyState() {
  $('task-list-empty').hidden = session.cards.size > 0 || $('task-list').getAttribute('aria-busy') === 'true';
}

/**
 * The single entry point for task snapshots.
 * @param {object} task
 * @param {{fromList?: boolean, force?: boolean}} [how]
 *   fromList: the snapshot belongs to a loaded page, so it is shown;
 *   force: show it even if it is older than the loaded pages (a tracked or just-started task).
 */
function upsertTask(task, { fromList = false, force = false } = {}) {
  if (!session.claims) return;
  const id = Number(task.id);
  const prev = session.tasks.get(id);
  let card = session.cards.get(id);

  // The card rejects stale snapshots; read back what it accepted so the map agrees with it.
  if (card) {
    card.task = task;
    task = card.task;
  } else if (prev && !isNewer(prev, task)) {
    task = prev;
  }
  session.tasks.set(id, task);

  if (prev && !isTerminal(prev) && isTerminal(task)) {
    announce(t('card.terminalAnnounce', { title: t('card.title', { type: label('type', task.task_type), id }), status: label('status', task.status) }));
  }

  const tracked = isTracked(task);
  if (tracked) {
    session.persistence.save(task);
    if (isTerminal(task)) stopWatching(id);
    else watch(task);
  }

  const visible = !session.dismissed.has(id) && matchesFilters(task);
  if (!visible) {
    if (card) removeCard(id);
  } else if (!card) {
    const inLoadedRange = fromList || force || tracked || id >= session.lowestLoadedId;
    if (inLoadedRange) insertCard(task, tracked);
  } else if (card.tracked !== tracked) {
    card.tracked = tracked;
    card.render();
  }
  renderEmptyState();
}


function isTracked(task) {
  return Boolean(session.persistence?.has(task));
}

function insertCard(task, tracked) {
  const card = document.createElement('long-task-card');
  card.canOperate = canOperate(session.claims.role);
  card.canDelete = canDelete(session.claims.role);
  card.stallAfterS = stallAfterS;
  card.tracked = tracked;
  card.actions = cardActions;
  card.task = task;
  // Newest first: ids grow with creation time, so order by id descending.
  const list = $('task-list');
  const id = Number(task.id);
  let before = null;
  for (const other of list.children) {
    if (Number(other.dataset.taskId) < id) {
      before = other;
      break;
    }
  }
  list.insertBefore(card, before);
  session.cards.set(id, card);
}

function removeCard(id) {
  const card = session.cards.get(id);
  if (!card) return;
  // Keep keyboard users in place: move focus to the neighbour (or the list heading).
  const hadFocus = card.contains(document.activeElement);
  const neighbour = card.nextElementSibling ?? card.previousElementSibling;
  card.remove();
  session.cards.delete(id);
  if (hadFocus) (neighbour?.querySelector('button:not([hidden])') ?? $('tasks')).focus();
  renderEmptyState();
}

const cardActions = {
  async cancel(task) {
    const updated = asTask(await api.cancelTask(task.id));
    if (updated) upsertTask(updated);
    // Follow the task to its end even if the business stream is down.
    const latest = session.tasks.get(Number(task.id));
    if (latest && !isTerminal(latest)) watch(latest);
    return updated;
  },
  dismiss(task) {
    const id = Number(task.id);
    session.persistence?.clear(task);
    stopWatching(id);
    session.dismissed.add(id);
    saveDismissed();
    removeCard(id);
  },
  async remove(task) {
    await api.deleteTask(task.id);
    const id = Number(task.id);
    session.persistence?.clear(task);
    stopWatching(id);
    session.tasks.delete(id);
    removeCard(id);
  },
  loadFailures: (task, cursor) => api.listItems(task.id, { status: 'failed', limit: PAGE_SIZE, cursor }),
  csvUrl: (task) => api.itemsCsvUrl(task.id, 'failed'),
};

function tickCards() {
  for (const card of session.cards.values()) card.tick();
}

/** Drop expired localStorage entries and un-mark their cards. */
function pruneTracked() {
  if (!session.persistence) return;
  const live = new Set(session.persistence.listAll().map((e) => e.taskId));
  for (const [id, card] of session.cards) {
    if (card.tracked && !live.has(id)) {
      card.tracked = false;
      card.render();
    }
  }
  for (const id of [...session.watchers.keys()]) {
    if (!live.has(id) && !session.watchers.get(id).keep) stopWatching(id);
  }
}

function announce(text) {
  const box = $('announcer');
  box.textContent = '';
  // A fresh text node after a tick makes screen readers announce repeats too.
  setTimeout(() => {
    box.textContent = text;
  }, 50);
}

// ---- tracked tasks (localStorage) -------------------------------------------------------------

/** After a reload: show the tracked tasks' cards at once, then fetch their real state. */
function restoreTrackedTasks() {
  for (const entry of session.persistence.listAll()) {
    const placeholder = {
      id: entry.taskId,
      task_type: entry.taskType,
      status: entry.status,
      total_items: 0,
      processed_items: 0,
      success_count: 0,
      failed_count: 0,
      skipped_count: 0,
      cancelled_count: 0,
      progress_pct: null,
      cancel_requested: false,
      placeholder: true,
    };
    if (!session.tasks.has(entry.taskId)) upsertTask(placeholder, { force: true });
    api.getTask(entry.taskId).then(
      (task) => {
        const real = asTask(task);
        if (real) upsertTask(real, { force: true });
      },
      (err) => {
        if (err instanceof ApiError && err.status === 404) forgetTask(entry.taskId, entry.taskType);
      },
    );
  }
}

function forgetTask(id, taskType) {
  session.persistence?.clear({ id, task_type: taskType });
  stopWatching(id);
  session.tasks.delete(id);
  removeCard(id);
}

function onTaskStarted(task) {
  session.persistence.save(task);
  if (!matchesFilters(task)) {
    // Show what was just started rather than leave it hidden behind a filter.
    $('filter-type').value = '';
    $('filter-status').value = '';
    session.filters = { taskType: '', status: '' };
    session.tasks.set(Number(task.id), task);
    loadList({ reset: true });
  }
  upsertTask(task, { force: true });
  announce(t('start.started', { id: task.id }));
}

// ---- live updates -----------------------------------------------------------------------------

function streamCount() {
  let n = 0;
  for (const w of session.watchers.values()) if (w.mode === 'stream' || w.mode === 'connecting') n++;
  return n;
}

/** Follow one task until it ends: its own SSE stream, or polling every 2.5 s. */
function watch(task) {
  const id = Number(task.id);
  if (session.watchers.has(id) || isTerminal(task)) return;
  const feed = new LiveFeed({
    streamUrl: () => api.taskEventsUrl(id),
    poll: () => api.getTask(id),
    pollMs: TASK_POLL_MS,
    streamAllowed: streamCount() < MAX_TASK_STREAMS,
    onData: (data) => {
      const snapshot = asTask(data);
      if (snapshot) upsertTask(snapshot);
    },
    isDone: (data) => isTerminal(asTask(data)),
    onPollError: (err) => {
      if (err instanceof ApiError && err.status === 404) {
        const known = session.tasks.get(id);
        forgetTask(id, known?.task_type ?? task.task_type);
        return true;
      }
      return err instanceof ApiError && (err.status === 401 || err.status === 403);
    },
    onMode: (mode) => {
      if (mode === 'stopped' && session.watchers.get(id) === feed) session.watchers.delete(id);
    },
  });
  // Watchers started for a cancel outlive the localStorage prune.
  feed.keep = !isTracked(task);
  session.watchers.set(id, feed);
  feed.start();
}

function stopWatching(id) {
  const feed = session.watchers.get(id);
  if (!feed) return;
  session.watchers.delete(id);
  feed.stop();
}

function startBusinessFeed() {
  session.businessFeed?.stop();
  const feed = new LiveFeed({
    streamUrl: () => api.businessEventsUrl(),
    // Fallback: re-read the first page every few seconds; new and changed tasks come with it.
    poll: async () => {
      const page = await api.listTasks({ limit: PAGE_SIZE, taskType: session.filters.taskType, status: session.filters.status });
      retryFailedList();
      for (const item of page?.items ?? []) {
        const task = asTask(item);
        if (task) upsertTask(task);
      }
      return undefined;
    },
    pollMs: LIST_POLL_MS,
    onData: (data) => {
      retryFailedList();
      const task = asTask(data);
      if (task) upsertTask(task);
    },
    onPollError: (err) => err instanceof ApiError && (err.status === 401 || err.status === 403),
    onMode: () => renderLiveStatus(),
  });
  session.businessFeed = feed;
  feed.start();
}

function suspendLive() {
  session.businessFeed?.stop();
  for (const id of [...session.watchers.keys()]) stopWatching(id);
}

function resumeLive() {
  startBusinessFeed();
  for (const task of session.tasks.values()) if (isTracked(task) && !isTerminal(task)) watch(task);
  loadList({ reset: true }); // whatever changed while the page slept
}

function renderLiveStatus() {
  const mode = session.businessFeed?.mode ?? 'stopped';
  const box = $('live-status');
  box.dataset.mode = mode;
  const key = { stream: 'list.liveStream', connecting: 'list.liveConnecting', polling: 'list.livePolling' }[mode];
  box.textContent = t(key ?? 'list.liveOff');
}

boot();
