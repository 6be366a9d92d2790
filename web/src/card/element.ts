// <long-task-card>: one task's live status, framework-free (the service page and the React
// bindings both render it). Light DOM, so a host's stylesheet and test selectors reach inside;
// its own stylesheet is added to the document once.
//
// The card is a view with a little local state (a cancel in flight, progress samples for the
// rate, the failed-items panel). It never fetches snapshots itself: the host feeds it with
// `card.task = snapshot` and gives it `actions` for what the user may do (each optional; a
// button without its action is not shown):
//
//   card.actions = {
//     cancel(task)               -> Promise<task | null | void>   POST /cancel
//     dismiss(task)              -> void                          hide the card, stop tracking it
//     remove(task)               -> Promise<void>                 DELETE a terminal task
//     loadFailures(task, cursor) -> Promise<{items, next_cursor}> the failed-items panel
//     csvPath(task)              -> string                        the failed items CSV's address
//                                                                 (what the link shows: no credential)
//     csvUrl(task)               -> string | Promise<string>      what a click opens (a fresh ticket)
//   }
//   card.canCancel   the user may cancel (operator/admin)
//   card.canDelete   the user may delete a finished task's record (admin)
//   card.stallAfterS seconds without progress before a running task shows as stalled
//   card.tracked     this tab follows the task (a badge)
//
// Test hooks: [data-task-id], [data-status], [data-counter=processed|success|failed|cancelled|
// skipped|total] (data-value = the raw integer), [data-delivery=accepted|delivered|read|failed|
// pending|unconfirmed|resent], [data-action=cancel|dismiss|delete|export-csv|more-failures], [role=progressbar],
// [data-field=status|percent|rate|eta|stalled|status-reason|error], class "stalled" and
// data-stalled="true" when stalled, data-loading while it shows a placeholder.

import { readableError } from '../api/client.js';
import type { DeliveryCounts, Item, ItemPage } from '../api/types.js';
import { formatDateTime, formatDecimal, formatDuration, formatNumber, langDir, langOf, LANG_CHANGE_EVENT, type Lang } from '../i18n/core.js';
import { priorityLabel, statusLabel, t, typeLabel, type CardMessageKey } from '../i18n/messages.js';
import { isActiveStatus, isNewerSnapshot, isTerminal, type TaskSnapshot } from '../snapshots.js';
import cardCss from './card.css?inline';
import { num, percentOf, ProgressTracker } from './progress.js';

const DELETE_CONFIRM_MS = 4_000;
const STYLE_ID = 'longtasks-card-style';

/** What a card shows: a snapshot, or a placeholder (known id and type, progress not loaded yet). */
export type CardTask = TaskSnapshot & { placeholder?: boolean };

export interface CardActions {
  /** May resolve with the task's new state (the cancel answer), which the card then shows. */
  cancel?: (task: CardTask) => unknown;
  dismiss?: (task: CardTask) => void;
  remove?: (task: CardTask) => Promise<void>;
  loadFailures?: (task: CardTask, cursor: string | undefined) => Promise<Pick<ItemPage, 'items' | 'next_cursor'>>;
  /** The CSV link's href: the address without a credential (URLs end up in logs). */
  csvPath?: (task: CardTask) => string;
  /** What a click on the link downloads: the address with a ticket minted just then. */
  csvUrl?: (task: CardTask) => string | Promise<string>;
}

type CounterName = 'success' | 'failed' | 'cancelled' | 'skipped';
const COUNTERS: readonly [CounterName, keyof TaskSnapshot, CardMessageKey][] = [
  ['success', 'success_count', 'card.success'],
  ['failed', 'failed_count', 'card.failed'],
  ['cancelled', 'cancelled_count', 'card.cancelled'],
  ['skipped', 'skipped_count', 'card.skipped'],
];
type DeliveryName = keyof DeliveryCounts;
const DELIVERY: readonly [DeliveryName, CardMessageKey][] = [
  ['accepted', 'card.deliveryAccepted'],
  ['delivered', 'card.deliveryDelivered'],
  ['read', 'card.deliveryRead'],
  ['failed', 'card.deliveryFailed'],
  ['pending', 'card.deliveryPending'],
  // Sends whose answer was lost (WhatsApp may or may not have the message), and sends repeated
  // under the broadcast's at-least-once policy: shown only when there are some.
  ['unconfirmed', 'card.deliveryUnconfirmed'],
  ['resent', 'card.deliveryResent'],
];

type Attrs = Record<string, string | boolean | null | undefined>;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, children: (Node | string)[] = []): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k === 'class') node.className = String(v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  node.append(...children);
  return node;
}

function ensureStyles(): void {
  if (document.getElementById(STYLE_ID)) return;
  const style = el('style', { id: STYLE_ID });
  style.textContent = cardCss;
  // First in <head>: the host's own rules come later and win at equal specificity.
  document.head.prepend(style);
}

interface Parts {
  title: HTMLHeadingElement;
  status: HTMLSpanElement;
  tracked: HTMLSpanElement;
  progress: HTMLDivElement;
  bar: HTMLDivElement;
  percent: HTMLSpanElement;
  rate: HTMLSpanElement;
  eta: HTMLSpanElement;
  stalled: HTMLParagraphElement;
  reason: HTMLParagraphElement;
  error: HTMLParagraphElement;
  processedLabel: HTMLElement;
  ofWord: HTMLSpanElement;
  processed: HTMLSpanElement;
  total: HTMLSpanElement;
  counters: Record<CounterName, { row: HTMLDivElement; label: HTMLElement; value: HTMLSpanElement }>;
  delivery: HTMLDivElement;
  deliveryTitle: HTMLElement;
  deliveryItems: Record<DeliveryName, { row: HTMLDivElement; label: HTMLElement; value: HTMLSpanElement }>;
  times: HTMLParagraphElement;
  failures: HTMLDetailsElement;
  failuresSummary: HTMLElement;
  failuresCsv: HTMLAnchorElement;
  failuresStatus: HTMLParagraphElement;
  failuresHead: HTMLTableRowElement;
  failuresBody: HTMLTableSectionElement;
  failuresTable: HTMLTableElement;
  failuresMore: HTMLButtonElement;
  actionError: HTMLParagraphElement;
  cancel: HTMLButtonElement;
  delete: HTMLButtonElement;
  dismiss: HTMLButtonElement;
}

let uidCounter = 0;

export class LongTaskCard extends HTMLElement {
  static readonly observedAttributes = ['lang'];

  actions: CardActions = {};
  canCancel = false;
  canDelete = false;
  stallAfterS = 30;
  tracked = false;

  private current: CardTask | null = null;
  private parts: Parts | null = null;
  private readonly progress = new ProgressTracker();
  private cancelInFlight = false;
  private cancelSent = false; // the API accepted our cancel: "cancelling" until terminal
  private deleteArmedUntil = 0;
  private deleting = false;
  private failures = { loadedFor: null as number | null, items: [] as Item[], cursor: null as string | null, loading: false };
  private readonly onLangChange = () => {
    this.render();
    // Rows carry formatted dates: rebuild them in the new language.
    this.parts?.failuresBody.replaceChildren(...this.failures.items.map((item) => this.failureRow(item)));
  };

  connectedCallback(): void {
    ensureStyles();
    this.build();
    this.render();
    document.addEventListener(LANG_CHANGE_EVENT, this.onLangChange);
  }

  disconnectedCallback(): void {
    document.removeEventListener(LANG_CHANGE_EVENT, this.onLangChange);
  }

  attributeChangedCallback(): void {
    this.onLangChange();
  }

  get task(): CardTask | null {
    return this.current;
  }

  /** Feed a snapshot. An older one than shown, or one un-finishing a finished task, is ignored. */
  set task(next: CardTask | null) {
    if (!next) return;
    const shown = this.current;
    if (shown && shown.id !== next.id) this.forget();
    const prev = this.current?.placeholder ? null : this.current;
    if (prev && !next.placeholder && !isNewerSnapshot(prev, next)) return;
    if (prev && next.placeholder) return; // a placeholder never replaces real data
    this.progress.observe(next, Date.now(), { placeholder: Boolean(next.placeholder) });
    if (isTerminal(next)) this.cancelSent = false;
    this.current = next;
    this.render();
  }

  /** Called about once a second by the host, so stall time and ETA move between snapshots. */
  tick(): void {
    if (this.current?.status === 'running') this.render();
  }

  get isCancelling(): boolean {
    const task = this.current;
    if (!task || isTerminal(task)) return false;
    return this.cancelInFlight || this.cancelSent || Boolean(task.cancel_requested);
  }

  private get cardLang(): Lang {
    return langOf(this);
  }

  private forget(): void {
    this.current = null;
    this.progress.reset();
    this.cancelInFlight = this.cancelSent = false;
    this.failures = { loadedFor: null, items: [], cursor: null, loading: false };
    this.parts?.failuresBody.replaceChildren();
    if (this.parts) this.parts.failures.open = false;
  }

  // ---- DOM ------------------------------------------------------------------------------------

  private build(): void {
    if (this.parts) return;
    this.classList.add('task-card');
    this.setAttribute('role', 'listitem');
    const uid = `task-card-${++uidCounter}`;

    const title = el('h3', { class: 'card-title', id: `${uid}-title` });
    const bar = el('div', { class: 'progress-fill' });
    const progress = el(
      'div',
      { class: 'progress', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0', 'aria-labelledby': `${uid}-title` },
      [bar],
    );
    const processed = el('span', { 'data-counter': 'processed' });
    const total = el('span', { 'data-counter': 'total' });
    const ofWord = el('span', { class: 'of' });
    const processedLabel = el('dt');
    const counterList = el('dl', { class: 'counters' }, [
      el('div', { class: 'counter counter-processed' }, [processedLabel, el('dd', {}, [processed, ' ', ofWord, ' ', total])]),
    ]);
    const counters = {} as Parts['counters'];
    for (const [name] of COUNTERS) {
      const label = el('dt');
      const value = el('span', { 'data-counter': name });
      const row = el('div', { class: `counter counter-${name}` }, [label, el('dd', {}, [value])]);
      counters[name] = { row, label, value };
      counterList.append(row);
    }
    const deliveryTitle = el('span', { class: 'delivery-title' });
    const deliveryList = el('dl', { class: 'counters delivery-counters' });
    const deliveryItems = {} as Parts['deliveryItems'];
    for (const [name] of DELIVERY) {
      const label = el('dt');
      const value = el('span', { 'data-delivery': name });
      const row = el('div', { class: `counter delivery-${name}` }, [label, el('dd', {}, [value])]);
      deliveryItems[name] = { row, label, value };
      deliveryList.append(row);
    }
    const delivery = el('div', { class: 'delivery', 'data-section': 'delivery', hidden: true }, [deliveryTitle, deliveryList]);

    const failuresBody = el('tbody');
    const failuresHead = el('tr');
    const failuresTable = el('table', { class: 'failures-table', hidden: true }, [el('thead', {}, [failuresHead]), failuresBody]);
    const failuresSummary = el('summary');
    const failuresCsv = el('a', { class: 'csv-link', 'data-action': 'export-csv', download: '', rel: 'noopener', referrerpolicy: 'no-referrer' });
    const failuresStatus = el('p', { class: 'failures-status', role: 'status' });
    const failuresMore = el('button', { type: 'button', class: 'secondary', 'data-action': 'more-failures', hidden: true });
    const failures = el('details', { class: 'failures', 'data-section': 'failures', hidden: true }, [
      failuresSummary,
      el('div', { class: 'failures-body' }, [failuresCsv, failuresStatus, el('div', { class: 'table-scroll' }, [failuresTable]), failuresMore]),
    ]);
    failures.addEventListener('toggle', () => {
      if (failures.open) void this.loadFailures(false);
    });
    failuresMore.addEventListener('click', () => void this.loadFailures(true));
    failuresCsv.addEventListener('click', (ev) => void this.onDownloadCsv(ev));

    const cancel = el('button', { type: 'button', class: 'danger', 'data-action': 'cancel', hidden: true });
    const remove = el('button', { type: 'button', class: 'secondary', 'data-action': 'delete', hidden: true });
    const dismiss = el('button', { type: 'button', class: 'secondary', 'data-action': 'dismiss', hidden: true });
    cancel.addEventListener('click', () => void this.onCancel());
    remove.addEventListener('click', () => void this.onDelete());
    dismiss.addEventListener('click', () => {
      if (this.current) this.actions.dismiss?.(this.current);
    });

    const parts: Parts = {
      title,
      status: el('span', { class: 'status-badge', 'data-field': 'status' }),
      tracked: el('span', { class: 'tracked-badge', hidden: true }),
      progress,
      bar,
      percent: el('span', { class: 'percent', 'data-field': 'percent' }),
      rate: el('span', { class: 'rate', 'data-field': 'rate', hidden: true }),
      eta: el('span', { class: 'eta', 'data-field': 'eta', hidden: true }),
      stalled: el('p', { class: 'stalled-note', 'data-field': 'stalled', hidden: true }),
      reason: el('p', { class: 'status-reason', 'data-field': 'status-reason', hidden: true }),
      error: el('p', { class: 'task-error', 'data-field': 'error', hidden: true }),
      processedLabel,
      ofWord,
      processed,
      total,
      counters,
      delivery,
      deliveryTitle,
      deliveryItems,
      times: el('p', { class: 'times' }),
      failures,
      failuresSummary,
      failuresCsv,
      failuresStatus,
      failuresHead,
      failuresBody,
      failuresTable,
      failuresMore,
      actionError: el('p', { class: 'action-error', role: 'alert', hidden: true }),
      cancel,
      delete: remove,
      dismiss,
    };
    this.parts = parts;

    const article = el('article', { 'aria-labelledby': `${uid}-title` }, [
      el('header', { class: 'card-header' }, [title, el('div', { class: 'badges' }, [parts.tracked, parts.status])]),
      progress,
      el('p', { class: 'progress-line' }, [parts.percent, parts.rate, parts.eta]),
      parts.stalled,
      parts.reason,
      parts.error,
      counterList,
      delivery,
      parts.times,
      failures,
      parts.actionError,
      el('div', { class: 'card-actions' }, [cancel, remove, dismiss]),
    ]);
    this.replaceChildren(article);
  }

  /** Idempotent: sets every field from the current snapshot and local state. */
  render(): void {
    const f = this.parts;
    const task = this.current;
    if (!f || !task) return;
    const lang = this.cardLang;
    const status = task.status;
    const now = Date.now();

    // An explicit lang on the card (a React prop) also sets its direction.
    if (this.hasAttribute('lang')) this.setAttribute('dir', langDir(lang));
    this.dataset.taskId = String(task.id);
    this.dataset.status = status;
    this.dataset.taskType = task.task_type;
    this.dataset.cancelRequested = String(Boolean(task.cancel_requested));
    this.toggleAttribute('data-loading', Boolean(task.placeholder));
    for (const c of [...this.classList]) if (c.startsWith('status-')) this.classList.remove(c);
    this.classList.add(`status-${status}`);
    this.classList.toggle('is-tracked', this.tracked);

    f.title.textContent = t('card.title', { type: typeLabel(task.task_type, lang), id: task.id }, lang);
    f.status.textContent = (status as string) === '' ? t('card.loading', {}, lang) : statusLabel(status, lang);
    f.tracked.hidden = !this.tracked;
    f.tracked.textContent = t('card.tracked', {}, lang);

    // Progress
    const pct = percentOf(task);
    const pctInt = Math.round(pct);
    f.progress.setAttribute('aria-valuenow', String(pctInt));
    f.progress.setAttribute(
      'aria-valuetext',
      `${pctInt}% (${formatNumber(num(task.processed_items), lang)} / ${formatNumber(num(task.total_items), lang)})`,
    );
    f.bar.style.inlineSize = `${pct}%`;
    f.percent.textContent = `${pctInt}%`;

    // Rate, ETA and stall only mean something while running.
    const running = status === 'running';
    const stalledFor = this.progress.stalledFor(now, this.stallAfterS);
    const rate = running && !stalledFor ? this.progress.rate() : null;
    f.rate.hidden = !(rate !== null && rate > 0);
    if (rate !== null && rate > 0) f.rate.textContent = t('card.rate', { rate: formatDecimal(rate, lang) }, lang);
    const eta = running && !stalledFor ? this.progress.eta(rate) : null;
    f.eta.hidden = eta === null;
    if (eta !== null) f.eta.textContent = t('card.eta', { eta: formatDuration(eta, lang) }, lang);

    this.classList.toggle('stalled', stalledFor > 0);
    if (stalledFor > 0) this.dataset.stalled = 'true';
    else delete this.dataset.stalled;
    f.stalled.hidden = !stalledFor;
    if (stalledFor) f.stalled.textContent = t('card.stalled', { duration: formatDuration(stalledFor, lang) }, lang);

    // Why it waits (status_reason) while active; why it stopped (cancel_reason) once cancelled.
    setOptionalText(f.reason, status === 'cancelled' ? task.cancel_reason || task.status_reason : task.status_reason);
    setOptionalText(f.error, task.error_message ? t('card.error', { message: task.error_message }, lang) : '');

    // Counters: data-value carries the raw integer, the text is formatted for the language.
    f.processedLabel.textContent = t('card.processed', {}, lang);
    f.ofWord.textContent = t('card.of', {}, lang);
    setCounter(f.processed, task.processed_items, lang);
    setCounter(f.total, task.total_items, lang);
    for (const [name, field, key] of COUNTERS) {
      f.counters[name].label.textContent = t(key, {}, lang);
      setCounter(f.counters[name].value, task[field], lang);
    }
    f.counters.skipped.row.hidden = !num(task.skipped_count);

    // Delivery counts (broadcasts, once the provider reports them).
    const delivery = task.delivery ?? null;
    f.delivery.hidden = delivery === null;
    if (delivery) {
      f.deliveryTitle.textContent = t('card.delivery', {}, lang);
      for (const [name, key] of DELIVERY) {
        const item = f.deliveryItems[name];
        item.label.textContent = t(key, {}, lang);
        const value = delivery[name];
        item.row.hidden = value === undefined || ((name === 'unconfirmed' || name === 'resent') && value === 0);
        setCounter(item.value, delivery[name], lang);
      }
    }

    // Times
    const times: string[] = [];
    if (task.created_at) times.push(t('card.created', { time: formatDateTime(task.created_at, lang) }, lang));
    if (task.start_at && status === 'scheduled') times.push(t('card.startAt', { time: formatDateTime(task.start_at, lang) }, lang));
    if (task.started_at) times.push(t('card.started', { time: formatDateTime(task.started_at, lang) }, lang));
    if (task.completed_at) times.push(t('card.completed', { time: formatDateTime(task.completed_at, lang) }, lang));
    if (task.priority && task.priority !== 'normal') times.push(t('card.priority', { priority: priorityLabel(task.priority, lang) }, lang));
    f.times.textContent = times.join(' · ');
    f.times.hidden = times.length === 0;

    this.renderFailures(lang);

    // Actions
    const cancelling = this.isCancelling;
    this.classList.toggle('is-cancelling', cancelling);
    f.cancel.hidden = !(isActiveStatus(status) && this.canCancel && this.actions.cancel);
    f.cancel.disabled = cancelling;
    f.cancel.textContent = cancelling ? t('card.cancelling', {}, lang) : t('card.cancel', {}, lang);
    if (cancelling) f.cancel.setAttribute('aria-busy', 'true');
    else f.cancel.removeAttribute('aria-busy');

    f.delete.hidden = !(isTerminal(task) && this.canDelete && this.actions.remove);
    f.delete.disabled = this.deleting;
    f.delete.textContent = this.deleting
      ? t('card.deleting', {}, lang)
      : now < this.deleteArmedUntil
        ? t('card.deleteConfirm', {}, lang)
        : t('card.delete', {}, lang);
    f.dismiss.hidden = !this.actions.dismiss;
    f.dismiss.textContent = t('card.dismiss', {}, lang);
  }

  private renderFailures(lang: Lang): void {
    const f = this.parts;
    const task = this.current;
    if (!f || !task) return;
    const failed = num(task.failed_count);
    // Without a way to load them, a count of failures is all the card can show (the counter).
    f.failures.hidden = failed === 0 || !this.actions.loadFailures;
    f.failuresSummary.textContent = t('card.failures', { count: formatNumber(failed, lang) }, lang);
    f.failuresCsv.textContent = t('card.failuresCsv', {}, lang);
    f.failuresCsv.hidden = !this.actions.csvUrl;
    f.failuresCsv.href = this.actions.csvPath?.(task) ?? '#';
    f.failuresMore.textContent = t('card.failuresMore', {}, lang);
    f.failuresHead.replaceChildren(
      ...(['card.colItem', 'card.colReason', 'card.colCode', 'card.colUpdated'] as const).map((k) =>
        el('th', { scope: 'col' }, [t(k, {}, lang)]),
      ),
    );
    // The open panel reloads itself when more items failed since it loaded.
    const st = this.failures;
    if (f.failures.open && st.loadedFor !== null && st.loadedFor !== failed && !st.loading) void this.loadFailures(false);
  }

  private async loadFailures(more: boolean): Promise<void> {
    const f = this.parts;
    const task = this.current;
    const st = this.failures;
    const load = this.actions.loadFailures;
    if (!f || !task || st.loading || !load) return;
    if (!more && st.loadedFor === num(task.failed_count)) return;
    const lang = this.cardLang;
    st.loading = true;
    f.failuresStatus.textContent = t('card.failuresLoading', {}, lang);
    f.failuresStatus.hidden = false;
    try {
      const page = await load(task, more ? (st.cursor ?? undefined) : undefined);
      if (!more) {
        st.items = [];
        f.failuresBody.replaceChildren();
      }
      st.items.push(...page.items);
      st.cursor = page.next_cursor ?? null;
      st.loadedFor = num(task.failed_count);
      f.failuresBody.append(...page.items.map((item) => this.failureRow(item)));
      f.failuresTable.hidden = st.items.length === 0;
      f.failuresStatus.textContent = st.items.length ? '' : t('card.failuresEmpty', {}, lang);
      f.failuresStatus.hidden = st.items.length > 0;
      f.failuresMore.hidden = !st.cursor;
    } catch (err) {
      f.failuresStatus.textContent = t('card.actionFailed', { reason: readableError(err, lang) }, lang);
    } finally {
      st.loading = false;
    }
  }

  /** The link shows the CSV's plain address; a click downloads it with a ticket minted now. */
  private async onDownloadCsv(ev: MouseEvent): Promise<void> {
    const task = this.current;
    const open = this.actions.csvUrl;
    if (!task || !open) return;
    ev.preventDefault();
    this.showActionError('');
    try {
      const href = await open(task);
      const a = el('a', { href, download: '', rel: 'noopener', referrerpolicy: 'no-referrer', hidden: true });
      this.append(a);
      a.click();
      a.remove();
    } catch (err) {
      this.showActionError(t('card.actionFailed', { reason: readableError(err, this.cardLang) }, this.cardLang));
    }
  }

  private async onCancel(): Promise<void> {
    const task = this.current;
    const cancel = this.actions.cancel;
    if (!task || this.isCancelling || !cancel) return;
    this.cancelInFlight = true;
    this.showActionError('');
    this.render();
    try {
      const answer: unknown = await cancel(task);
      this.cancelSent = true;
      if (answer && typeof answer === 'object' && 'id' in answer && 'status' in answer) this.task = answer as CardTask;
    } catch (err) {
      this.showActionError(t('card.actionFailed', { reason: readableError(err, this.cardLang) }, this.cardLang));
    } finally {
      this.cancelInFlight = false;
      this.render();
    }
  }

  private async onDelete(): Promise<void> {
    const task = this.current;
    const remove = this.actions.remove;
    if (!task || this.deleting || !remove) return;
    // Two clicks instead of window.confirm(): a modal blocks live updates, and automated
    // browsers dismiss it.
    if (Date.now() >= this.deleteArmedUntil) {
      this.deleteArmedUntil = Date.now() + DELETE_CONFIRM_MS;
      this.render();
      setTimeout(() => this.render(), DELETE_CONFIRM_MS + 50);
      return;
    }
    this.deleteArmedUntil = 0;
    this.deleting = true;
    this.showActionError('');
    this.render();
    try {
      await remove(task);
    } catch (err) {
      this.showActionError(t('card.actionFailed', { reason: readableError(err, this.cardLang) }, this.cardLang));
    } finally {
      this.deleting = false;
      if (this.isConnected) this.render();
    }
  }

  private showActionError(text: string): void {
    if (!this.parts) return;
    this.parts.actionError.textContent = text;
    this.parts.actionError.hidden = !text;
  }

  private failureRow(item: Item): HTMLTableRowElement {
    const lang = this.cardLang;
    // Labels (phone numbers such as +972..., "+1 555") and provider messages are mostly
    // left-to-right: dir=auto isolates them, or a right-to-left page shows "555 1+".
    const key = item.item_key;
    return el('tr', { 'data-item-key': key }, [
      el('td', {}, [
        el('span', { class: 'item-label', dir: 'auto' }, [item.label || key]),
        item.label && item.label !== key ? el('span', { class: 'item-key' }, [` (${key})`]) : '',
      ]),
      el('td', { class: 'item-reason' }, [el('span', { dir: 'auto' }, [item.error_message ?? ''])]),
      el('td', { class: 'item-code' }, [item.error_code ?? '']),
      el('td', { class: 'item-updated' }, [formatDateTime(item.updated_at, lang)]),
    ]);
  }
}

function setCounter(node: HTMLElement, value: unknown, lang: Lang): void {
  const n = num(value);
  node.dataset.value = String(n);
  node.textContent = formatNumber(n, lang);
}

function setOptionalText(node: HTMLElement, text: string | null | undefined): void {
  node.hidden = !text;
  node.textContent = text ?? '';
}

/** Registers <long-task-card> once (importing the package twice must not throw). */
export function defineLongTaskCard(): void {
  if (!customElements.get('long-task-card')) customElements.define('long-task-card', LongTaskCard);
}

declare global {
  interface HTMLElementTagNameMap {
    'long-task-card': LongTaskCard;
  }
}
