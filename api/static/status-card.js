// <long-task-card>: the seed's LongTaskStatusCard as a Web Component (light DOM, so the page's
// stylesheet and test selectors reach inside).
//
// The card is a view with a little local state (cancel in flight, progress samples for the rate,
// the failed-items panel). It never fetches task snapshots itself: the page feeds it with
// `card.task = snapshot` from SSE or polling, and gives it `actions` for what the user can do:
//
//   card.actions = {
//     cancel(task)          -> Promise<task|null>   POST /cancel
//     dismiss(task)         -> void                 hide the card, forget it in localStorage
//     remove(task)          -> Promise<void>        DELETE the (terminal) task
//     loadFailures(task, cursor) -> Promise<{items, next_cursor}>
//     csvUrl(task)          -> string               failed items CSV (token in the query)
//   }
//   card.canOperate = role is operator/admin (cancel)
//   card.canDelete = role is admin (delete a finished task's record)
//   card.stallAfterS = seconds without progress before a running task shows as stalled
//
// Test hooks: [data-task-id], [data-status], [data-counter=processed|success|failed|cancelled|
// skipped|total] (with data-value = the raw integer), [data-action=cancel|dismiss|delete|
// export-csv|more-failures], [role=progressbar], [data-field=status|rate|eta|stalled|
// status-reason|error], class "stalled" and data-stalled="true" when stalled.

import { t, label, formatNumber, formatDecimal, formatDateTime, formatDuration } from './i18n.js';
import { ApiError, isTerminal, isNewerSnapshot } from './api.js';

const RATE_WINDOW_MS = 60_000; // rate over the last minute: smooth, yet reacts to a slowdown
const DELETE_CONFIRM_MS = 4_000;
const COUNTERS = [
  ['success', 'success_count', 'card.success'],
  ['failed', 'failed_count', 'card.failed'],
  ['cancelled', 'cancelled_count', 'card.cancelled'],
  ['skipped', 'skipped_count', 'card.skipped'],
];

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) node.append(c);
  return node;
}

function num(v) {
  const n = Number(v);
  return Number.isFinite(n) ? n : 0;
}

function readableError(err) {
  return err instanceof ApiError ? err.readable() : String(err?.message ?? err);
}

export class LongTaskCard extends HTMLElement {
  constructor() {
    super();
    this.actions = {};
    this.canOperate = false;
    this.canDelete = false;
    this.stallAfterS = 30;
    this._task = null;
    this._built = false;
    this._samples = []; // [{t, p}] client receive time and processed_items, on each change
    this._lastChangeAt = 0;
    this._cancelInFlight = false;
    this._cancelSent = false; // the API accepted our cancel; show "cancelling" until terminal
    this._deleteArmedUntil = 0;
    this._busyDeleting = false;
    this._failures = { loadedFor: null, items: [], cursor: null, loading: false };
    this._onLang = () => {
      this.render();
      // Rows carry formatted dates: rebuild them in the new locale.
      if (this._built) this._f.failuresBody.replaceChildren(...this._failures.items.map(failureRow));
    };
  }

  connectedCallback() {
    this.#build();
    this.render();
    document.addEventListener('longtasks:langchange', this._onLang);
  }

  disconnectedCallback() {
    document.removeEventListener('longtasks:langchange', this._onLang);
  }

  get task() {
    return this._task;
  }

  /** Feed a snapshot. Older snapshots (by updated_at) and un-terminal-ing are ignored. */
  set task(next) {
    if (!next) return;
    // A placeholder (a tracked task re-opened after a reload, before its first fetch) carries
    // no progress: forget it rather than let 0 -> N look like a burst of speed.
    const prev = this._task?.placeholder ? null : this._task;
    if (prev && !isNewerSnapshot(prev, next)) return;
    if (this._task?.placeholder) this._samples = [];
    const now = Date.now();
    const p = num(next.processed_items);
    const becameRunning = next.status === 'running' && prev?.status !== 'running';
    if (next.placeholder) {
      this._lastChangeAt = now;
    } else if (!prev || becameRunning || num(prev.processed_items) !== p) {
      this._lastChangeAt = now;
      if (becameRunning) this._samples = [];
      this._samples.push({ t: now, p });
      this._samples = this._samples.filter((s) => now - s.t <= RATE_WINDOW_MS || s === this._samples.at(-1));
    }
    if (isTerminal(next)) this._cancelSent = false;
    this._task = next;
    this.render();
  }

  /** Called about once a second by the page, so stall time and ETA move without new snapshots. */
  tick() {
    if (this._task?.status === 'running') this.render();
  }

  // ---- derived values -------------------------------------------------------------------------

  get percent() {
    const task = this._task;
    let pct = Number(task.progress_pct);
    if (!Number.isFinite(pct)) {
      const total = num(task.total_items);
      pct = total > 0 ? (100 * num(task.processed_items)) / total : task.status === 'completed' ? 100 : 0;
    }
    return Math.min(100, Math.max(0, pct));
  }

  /** Items per second from successive snapshots; before there are two, the server-side average. */
  get rate() {
    const s = this._samples;
    if (s.length >= 2) {
      const first = s[0];
      const last = s.at(-1);
      const dt = (last.t - first.t) / 1000;
      if (dt > 0) return (last.p - first.p) / dt;
    }
    const task = this._task;
    const started = Date.parse(task.started_at);
    const updated = Date.parse(task.updated_at);
    const elapsed = (updated - started) / 1000;
    if (Number.isFinite(elapsed) && elapsed > 1 && num(task.processed_items) > 0) return num(task.processed_items) / elapsed;
    return null;
  }

  get stalledForS() {
    if (this._task?.status !== 'running') return 0;
    const s = (Date.now() - this._lastChangeAt) / 1000;
    return s >= this.stallAfterS ? s : 0;
  }

  get isCancelling() {
    const task = this._task;
    if (!task || isTerminal(task)) return false;
    return this._cancelInFlight || this._cancelSent || Boolean(task.cancel_requested);
  }

  // ---- DOM ------------------------------------------------------------------------------------

  #build() {
    if (this._built) return;
    this._built = true;
    this.classList.add('task-card');
    this.setAttribute('role', 'listitem');
    const uid = `task-card-${Math.random().toString(36).slice(2, 9)}`;

    const f = (this._f = {});
    f.title = el('h3', { class: 'card-title', id: `${uid}-title` });
    f.status = el('span', { class: 'status-badge', 'data-field': 'status' });
    f.tracked = el('span', { class: 'tracked-badge', hidden: true });
    f.bar = el('div', { class: 'progress-fill' });
    f.progress = el(
      'div',
      { class: 'progress', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0', 'aria-labelledby': `${uid}-title` },
      [f.bar],
    );
    f.percent = el('span', { class: 'percent', 'data-field': 'percent' });
    f.rate = el('span', { class: 'rate', 'data-field': 'rate', hidden: true });
    f.eta = el('span', { class: 'eta', 'data-field': 'eta', hidden: true });
    f.stalled = el('p', { class: 'stalled-note', 'data-field': 'stalled', hidden: true });
    f.reason = el('p', { class: 'status-reason', 'data-field': 'status-reason', hidden: true });
    f.error = el('p', { class: 'task-error', 'data-field': 'error', hidden: true });

    // processed / total share one row; the rest get a row each.
    f.counterLabels = {};
    f.counters = {};
    f.counterRows = {};
    f.counters.processed = el('span', { 'data-counter': 'processed' });
    f.counters.total = el('span', { 'data-counter': 'total' });
    f.ofWord = el('span', { class: 'of' });
    f.counterLabels.processed = el('dt');
    f.counterRows.processed = el('div', { class: 'counter counter-processed' }, [
      f.counterLabels.processed,
      el('dd', {}, [f.counters.processed, ' ', f.ofWord, ' ', f.counters.total]),
    ]);
    const counterList = el('dl', { class: 'counters' }, [f.counterRows.processed]);
    for (const [name] of COUNTERS) {
      f.counters[name] = el('span', { 'data-counter': name });
      f.counterLabels[name] = el('dt');
      f.counterRows[name] = el('div', { class: `counter counter-${name}` }, [f.counterLabels[name], el('dd', {}, [f.counters[name]])]);
      counterList.append(f.counterRows[name]);
    }

    f.times = el('p', { class: 'times' });

    f.failuresSummary = el('summary');
    f.failuresCsv = el('a', { class: 'csv-link', 'data-action': 'export-csv', download: '', rel: 'noopener', referrerpolicy: 'no-referrer' });
    f.failuresStatus = el('p', { class: 'failures-status', role: 'status' });
    f.failuresBody = el('tbody');
    f.failuresHead = el('tr');
    f.failuresTable = el('table', { class: 'failures-table', hidden: true }, [el('thead', {}, [f.failuresHead]), f.failuresBody]);
    f.failuresMore = el('button', { type: 'button', class: 'secondary', 'data-action': 'more-failures', hidden: true });
    f.failures = el('details', { class: 'failures', 'data-section': 'failures', hidden: true }, [
      f.failuresSummary,
      el('div', { class: 'failures-body' }, [f.failuresCsv, f.failuresStatus, el('div', { class: 'table-scroll' }, [f.failuresTable]), f.failuresMore]),
    ]);
    f.failures.addEventListener('toggle', () => {
      if (f.failures.open) this.#loadFailures(false);
    });
    f.failuresMore.addEventListener('click', () => this.#loadFailures(true));

    f.actionError = el('p', { class: 'action-error', role: 'alert', hidden: true });

    f.cancel = el('button', { type: 'button', class: 'danger', 'data-action': 'cancel', hidden: true });
    f.delete = el('button', { type: 'button', class: 'secondary', 'data-action': 'delete', hidden: true });
    f.dismiss = el('button', { type: 'button', class: 'secondary', 'data-action': 'dismiss' });
    f.cancel.addEventListener('click', () => this.#onCancel());
    f.delete.addEventListener('click', () => this.#onDelete());
    f.dismiss.addEventListener('click', () => this.actions.dismiss?.(this._task));

    const article = el('article', { 'aria-labelledby': `${uid}-title` }, [
      el('header', { class: 'card-header' }, [f.title, el('div', { class: 'badges' }, [f.tracked, f.status])]),
      f.progress,
      el('p', { class: 'progress-line' }, [f.percent, f.rate, f.eta]),
      f.stalled,
      f.reason,
      f.error,
      counterList,
      f.times,
      f.failures,
      f.actionError,
      el('div', { class: 'card-actions' }, [f.cancel, f.delete, f.dismiss]),
    ]);
    this.replaceChildren(article);
  }

  /** Idempotent: sets every field from the current snapshot and local state. */
  render() {
    if (!this._built || !this._task) return;
    const task = this._task;
    const f = this._f;
    const status = task.status;

    this.dataset.taskId = String(task.id);
    this.dataset.status = status;
    this.dataset.taskType = task.task_type;
    this.dataset.cancelRequested = String(Boolean(task.cancel_requested));
    this.toggleAttribute('data-loading', Boolean(task.placeholder));
    for (const c of [...this.classList]) if (c.startsWith('status-')) this.classList.remove(c);
    this.classList.add(`status-${status}`);
    this.classList.toggle('is-tracked', Boolean(this.tracked));

    f.title.textContent = t('card.title', { type: label('type', task.task_type), id: task.id });
    f.status.textContent = label('status', status);
    f.tracked.hidden = !this.tracked;
    f.tracked.textContent = t('card.tracked');

    // Progress
    const pct = this.percent;
    const pctInt = Math.round(pct);
    f.progress.setAttribute('aria-valuenow', String(pctInt));
    f.progress.setAttribute(
      'aria-valuetext',
      `${pctInt}% (${formatNumber(num(task.processed_items))} / ${formatNumber(num(task.total_items))})`,
    );
    f.bar.style.inlineSize = `${pct}%`;
    f.percent.textContent = `${pctInt}%`;

    // Rate, ETA and stall only mean something while running.
    const running = status === 'running';
    const stalledFor = this.stalledForS;
    const rate = running && !stalledFor ? this.rate : null;
    f.rate.hidden = !(rate !== null && rate > 0);
    if (!f.rate.hidden) f.rate.textContent = t('card.rate', { rate: formatDecimal(rate) });
    const remaining = num(task.total_items) - num(task.processed_items);
    const eta = rate > 0 && remaining > 0 ? remaining / rate : null;
    f.eta.hidden = eta === null;
    if (eta !== null) f.eta.textContent = t('card.eta', { eta: formatDuration(eta) });

    this.classList.toggle('stalled', stalledFor > 0);
    if (stalledFor > 0) this.dataset.stalled = 'true';
    else delete this.dataset.stalled;
    f.stalled.hidden = !stalledFor;
    if (stalledFor) f.stalled.textContent = t('card.stalled', { duration: formatDuration(stalledFor) });

    // Why it waits (status_reason) while active; why it stopped (cancel_reason) once cancelled.
    setOptionalText(f.reason, status === 'cancelled' ? task.cancel_reason || task.status_reason : task.status_reason);
    setOptionalText(f.error, task.error_message ? t('card.error', { message: task.error_message }) : '');

    // Counters (data-value carries the raw integer; the text is locale formatted)
    f.counterLabels.processed.textContent = t('card.processed');
    f.ofWord.textContent = t('card.of');
    setCounter(f.counters.processed, task.processed_items);
    setCounter(f.counters.total, task.total_items);
    for (const [name, field, label] of COUNTERS) {
      f.counterLabels[name].textContent = t(label);
      setCounter(f.counters[name], task[field]);
    }
    f.counterRows.skipped.hidden = !num(task.skipped_count);

    // Times
    const times = [t('card.created', { time: formatDateTime(task.created_at) })];
    if (task.start_at && status === 'scheduled') times.push(t('card.startAt', { time: formatDateTime(task.start_at) }));
    if (task.started_at) times.push(t('card.started', { time: formatDateTime(task.started_at) }));
    if (task.completed_at) times.push(t('card.completed', { time: formatDateTime(task.completed_at) }));
    if (task.priority && task.priority !== 'normal') times.push(t('card.priority', { priority: label('priority', task.priority) }));
    f.times.textContent = times.join(' · ');

    this.#renderFailures();

    // Actions
    const active = status === 'scheduled' || status === 'running';
    const cancelling = this.isCancelling;
    this.classList.toggle('is-cancelling', cancelling);
    f.cancel.hidden = !(active && this.canOperate);
    f.cancel.disabled = cancelling;
    f.cancel.textContent = cancelling ? t('card.cancelling') : t('card.cancel');
    if (cancelling) f.cancel.setAttribute('aria-busy', 'true');
    else f.cancel.removeAttribute('aria-busy');

    f.delete.hidden = !(isTerminal(task) && this.canDelete && this.actions.remove);
    f.delete.disabled = this._busyDeleting;
    f.delete.textContent = this._busyDeleting
      ? t('card.deleting')
      : Date.now() < this._deleteArmedUntil
        ? t('card.deleteConfirm')
        : t('card.delete');
    f.dismiss.textContent = t('card.dismiss');
  }

  #renderFailures() {
    const f = this._f;
    const task = this._task;
    const failed = num(task.failed_count);
    f.failures.hidden = failed === 0;
    f.failuresSummary.textContent = t('card.failures', { count: formatNumber(failed) });
    f.failuresCsv.textContent = t('card.failuresCsv');
    f.failuresCsv.href = this.actions.csvUrl?.(task) ?? '#';
    f.failuresMore.textContent = t('card.failuresMore');
    f.failuresHead.replaceChildren(
      ...['card.colItem', 'card.colReason', 'card.colCode', 'card.colUpdated'].map((k) => el('th', { scope: 'col', text: t(k) })),
    );
    // The open panel refreshes itself when more items have failed since it loaded.
    if (f.failures.open && this._failures.loadedFor !== null && this._failures.loadedFor !== failed && !this._failures.loading) {
      this.#loadFailures(false);
    }
  }

  async #loadFailures(more) {
    const st = this._failures;
    const task = this._task;
    const f = this._f;
    if (st.loading || !this.actions.loadFailures) return;
    if (!more && st.loadedFor === num(task.failed_count)) return;
    st.loading = true;
    f.failuresStatus.textContent = t('card.failuresLoading');
    f.failuresStatus.hidden = false;
    try {
      const page = await this.actions.loadFailures(task, more ? st.cursor : undefined);
      const items = page?.items ?? [];
      if (!more) {
        st.items = [];
        f.failuresBody.replaceChildren();
      }
      st.items.push(...items);
      st.cursor = page?.next_cursor ?? null;
      st.loadedFor = num(task.failed_count);
      for (const item of items) f.failuresBody.append(failureRow(item));
      f.failuresTable.hidden = st.items.length === 0;
      f.failuresStatus.textContent = st.items.length ? '' : t('card.failuresEmpty');
      f.failuresStatus.hidden = st.items.length > 0;
      f.failuresMore.hidden = !st.cursor;
    } catch (err) {
      f.failuresStatus.textContent = t('card.actionFailed', { reason: readableError(err) });
    } finally {
      st.loading = false;
    }
  }

  async #onCancel() {
    if (this.isCancelling || !this.actions.cancel) return;
    this._cancelInFlight = true;
    this.#showActionError('');
    this.render();
    try {
      const task = await this.actions.cancel(this._task);
      this._cancelSent = true;
      if (task) this.task = task;
    } catch (err) {
      this.#showActionError(t('card.actionFailed', { reason: readableError(err) }));
    } finally {
      this._cancelInFlight = false;
      this.render();
    }
  }

  async #onDelete() {
    if (this._busyDeleting || !this.actions.remove) return;
    // Two clicks instead of window.confirm(): a modal dialog blocks the page's live updates and
    // automated browsers dismiss it.
    if (Date.now() >= this._deleteArmedUntil) {
      this._deleteArmedUntil = Date.now() + DELETE_CONFIRM_MS;
      this.render();
      setTimeout(() => this.render(), DELETE_CONFIRM_MS + 50);
      return;
    }
    this._deleteArmedUntil = 0;
    this._busyDeleting = true;
    this.#showActionError('');
    this.render();
    try {
      await this.actions.remove(this._task);
    } catch (err) {
      this.#showActionError(t('card.actionFailed', { reason: readableError(err) }));
    } finally {
      this._busyDeleting = false;
      if (this.isConnected) this.render();
    }
  }

  #showActionError(text) {
    this._f.actionError.textContent = text;
    this._f.actionError.hidden = !text;
  }
}

function setCounter(node, value) {
  const n = num(value);
  node.dataset.value = String(n);
  node.textContent = formatNumber(n);
}

function setOptionalText(node, text) {
  node.hidden = !text;
  node.textContent = text || '';
}

function failureRow(item) {
  // Labels (phone numbers such as +972..., "+1 555") and provider messages are mostly
  // left-to-right: isolate them with dir=auto, or a right-to-left page shows "555 1+".
  return el('tr', { 'data-item-key': item.item_key ?? '' }, [
    el('td', {}, [
      el('span', { class: 'item-label', dir: 'auto', text: item.label || item.item_key || '' }),
      item.label && item.item_key && item.label !== item.item_key ? el('span', { class: 'item-key', text: ` (${item.item_key})` }) : '',
    ]),
    el('td', { class: 'item-reason' }, [el('span', { dir: 'auto', text: item.error_message || '' })]),
    el('td', { class: 'item-code', text: item.error_code || '' }),
    el('td', { class: 'item-updated', text: formatDateTime(item.updated_at) }),
  ]);
}

if (!customElements.get('long-task-card')) customElements.define('long-task-card', LongTaskCard);
