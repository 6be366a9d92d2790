// The three "start a task" forms: #broadcast-form, #sync-form, #delete-form.
//
// Each form checks what the browser can know (something to send, well-formed ids), builds the
// typed body of its endpoint, and shows the API's answer next to itself: the started task, or
// the error `detail` (a string, or FastAPI's 422 list mapped back onto the form's fields).

import { ApiError, type ApiClient } from '../src/api/client';
import {
  PRIORITIES,
  RECEIPT_SOURCES,
  type BroadcastRequest,
  type ReceiptDeleteRequest,
  type ReceiptSyncRequest,
  type Task,
} from '../src/api/types';
import { formatNumber, LANG_CHANGE_EVENT } from '../src/i18n/core';
import { priorityLabel } from '../src/i18n/messages';
import { t } from './messages';
import { parseRecipientText, recipientsFromFile } from './recipients';

/** A problem found before calling the API, with the form control it is about. */
class FormProblem extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

interface Started {
  task: Task;
  recipients_accepted?: number;
  recipients_invalid?: number;
  duplicates_dropped?: number;
}

interface FormSpec<Body> {
  buildPayload: () => Body | Promise<Body>;
  send: (payload: Body) => Promise<Started>;
  /** A 422 `loc` (without "body") -> the form control's name. */
  fieldFor: (path: (string | number)[]) => string | null;
  afterSuccess?: () => void;
}

type Control = HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement;

function control(form: HTMLFormElement, name: string): Control {
  const found = form.elements.namedItem(name);
  if (!found) throw new Error(`no control named ${name} in #${form.id}`);
  return found as Control;
}

/** A radio group's value (RadioNodeList) or a single control's. */
function choice(form: HTMLFormElement, name: string): string {
  const found = form.elements.namedItem(name);
  return found && 'value' in found ? found.value : '';
}

const value = (form: HTMLFormElement, name: string): string => control(form, name).value.trim();

function required<T extends Element>(root: ParentNode, selector: string): T {
  const found = root.querySelector<T>(selector);
  if (!found) throw new Error(`missing ${selector}`);
  return found;
}

function wireForm<Body>(form: HTMLFormElement, spec: FormSpec<Body>, onStarted: (task: Task) => void): void {
  const errorBox = required<HTMLElement>(form, '[data-role="form-error"]');
  const statusBox = required<HTMLElement>(form, '[data-role="form-status"]');
  const submit = required<HTMLButtonElement>(form, 'button[type="submit"]');

  function clearMessages(): void {
    errorBox.replaceChildren();
    errorBox.hidden = true;
    statusBox.textContent = '';
    delete statusBox.dataset.startedId;
    for (const c of form.querySelectorAll('[aria-invalid="true"]')) c.removeAttribute('aria-invalid');
  }

  function showErrors(lines: string[], fields: (string | null)[] = []): void {
    errorBox.replaceChildren();
    if (lines.length > 1) {
      const list = document.createElement('ul');
      for (const line of lines) {
        const item = document.createElement('li');
        item.textContent = line;
        list.append(item);
      }
      errorBox.append(t('start.fixErrors'), list);
    } else errorBox.textContent = lines[0] ?? '';
    errorBox.hidden = false;
    let first: Control | null = null;
    for (const name of fields) {
      const found = name ? form.elements.namedItem(name) : null;
      if (found instanceof HTMLElement) {
        found.setAttribute('aria-invalid', 'true');
        first ??= found as Control;
      }
    }
    first?.focus();
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void (async () => {
      if (form.dataset.busy === 'true') return;
      clearMessages();
      form.dataset.busy = 'true';
      submit.disabled = true;
      submit.textContent = t('start.submitting');
      try {
        const res = await spec.send(await spec.buildPayload());
        const task = res.task;
        statusBox.dataset.startedId = String(task.id);
        statusBox.textContent = t('start.started', { id: task.id });
        // The broadcast endpoint says what it made of the list: worth showing before it runs.
        if (typeof res.recipients_accepted === 'number') {
          statusBox.textContent += ` ${t('broadcast.intake', {
            accepted: formatNumber(res.recipients_accepted),
            invalid: formatNumber(res.recipients_invalid ?? 0),
            duplicates: formatNumber(res.duplicates_dropped ?? 0),
          })}`;
        }
        spec.afterSuccess?.();
        onStarted(task);
      } catch (err) {
        if (err instanceof FormProblem) showErrors([err.message], [err.field]);
        else if (err instanceof ApiError && err.fieldErrors.length) {
          const fe = err.fieldErrors;
          showErrors(
            fe.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)),
            fe.map((e) => spec.fieldFor(e.path)),
          );
        } else if (err instanceof ApiError) showErrors([err.readable()]);
        else showErrors([err instanceof Error ? err.message : String(err)]);
      } finally {
        form.dataset.busy = 'false';
        submit.disabled = false;
        submit.textContent = t('start.submit');
      }
    })();
  });

  document.addEventListener(LANG_CHANGE_EVENT, () => {
    const id = statusBox.dataset.startedId;
    if (id) statusBox.textContent = t('start.started', { id });
    if (form.dataset.busy !== 'true') submit.textContent = t('start.submit');
  });

  // Editing a flagged field clears its flag: the old message no longer describes it.
  form.addEventListener('input', (ev) => (ev.target as Element | null)?.removeAttribute('aria-invalid'));
}

// ---- broadcast --------------------------------------------------------------------------------

function fillPriorities(select: HTMLSelectElement): void {
  const chosen = select.value || 'normal';
  select.replaceChildren(
    ...PRIORITIES.map((p) => {
      const option = new Option(priorityLabel(p), p);
      option.selected = p === chosen;
      return option;
    }),
  );
}

function setupBroadcast(form: HTMLFormElement, api: ApiClient, onStarted: (task: Task) => void): void {
  let fileRecipients: string[] = [];
  const countBox = required<HTMLElement>(form, '[data-role="recipient-count"]');
  const fileInput = control(form, 'recipients_file') as HTMLInputElement;
  const priority = control(form, 'priority') as HTMLSelectElement;
  fillPriorities(priority);
  document.addEventListener(LANG_CHANGE_EVENT, () => fillPriorities(priority));

  const recipients = () => [...parseRecipientText(control(form, 'recipients').value), ...fileRecipients];
  const updateCount = () => {
    countBox.textContent = t('broadcast.recipientCount', { count: formatNumber(recipients().length) });
  };

  function syncKind(): void {
    const kind = choice(form, 'message_kind') || 'text';
    for (const group of form.querySelectorAll<HTMLElement>('[data-kind]')) {
      const on = group.dataset.kind === kind;
      group.hidden = !on;
      for (const c of group.querySelectorAll<HTMLInputElement>('[data-required]')) c.required = on;
    }
  }

  fileInput.addEventListener('change', () => {
    void (async () => {
      fileRecipients = [];
      try {
        fileRecipients = await recipientsFromFile(fileInput.files?.[0]);
      } catch (err) {
        fileInput.setAttribute('aria-invalid', 'true');
        countBox.textContent = t('broadcast.fileError', { reason: err instanceof Error ? err.message : String(err) });
        return;
      }
      updateCount();
    })();
  });
  control(form, 'recipients').addEventListener('input', updateCount);
  for (const radio of form.querySelectorAll('input[name="message_kind"]')) radio.addEventListener('change', syncKind);
  document.addEventListener(LANG_CHANGE_EVENT, updateCount);
  form.addEventListener('reset', () => {
    fileRecipients = [];
    setTimeout(() => {
      syncKind();
      updateCount();
    });
  });
  syncKind();
  updateCount();

  wireForm<BroadcastRequest>(
    form,
    {
      async buildPayload() {
        // The change handler may still be reading a just-picked file: read it again to be sure.
        const file = fileInput.files?.[0];
        if (file) fileRecipients = await recipientsFromFile(file);
        const name = value(form, 'name');
        if (!name) throw new FormProblem(t('broadcast.noName'), 'name');
        const list = recipients();
        if (!list.length) throw new FormProblem(t('broadcast.noRecipients'), 'recipients');
        let message: BroadcastRequest['message'];
        if (choice(form, 'message_kind') === 'template') {
          const templateName = value(form, 'template_name');
          const language = value(form, 'template_language');
          if (!templateName || !language) {
            throw new FormProblem(t('broadcast.noTemplate'), templateName ? 'template_language' : 'template_name');
          }
          const params = value(form, 'template_params')
            .split(/\r?\n/)
            .map((s) => s.trim())
            .filter(Boolean);
          message = { template: { name: templateName, language, params } };
        } else {
          const text = control(form, 'text').value;
          if (!text.trim()) throw new FormProblem(t('broadcast.noText'), 'text');
          message = { text };
        }
        const payload: BroadcastRequest = { name, recipients: list, message };
        const startAt = value(form, 'start_at');
        if (startAt) {
          // datetime-local has no zone: it is the user's local time. Send an absolute instant.
          const when = new Date(startAt);
          if (Number.isNaN(when.getTime())) throw new FormProblem(t('broadcast.badStartAt'), 'start_at');
          payload.start_at = when.toISOString();
        }
        const chosen = PRIORITIES.find((p) => p === priority.value);
        if (chosen && chosen !== 'normal') payload.priority = chosen;
        return payload;
      },
      send: (payload) => api.startBroadcast(payload),
      fieldFor(path) {
        const [head, ...rest] = path;
        if (head === 'message') {
          if (rest[0] === 'template') return `template_${rest[1] === 'params' ? 'params' : rest[1] === 'language' ? 'language' : 'name'}`;
          return 'text';
        }
        return typeof head === 'string' ? head : null;
      },
      afterSuccess() {
        // Keep the message (a typical next step is a similar broadcast); clear the audience.
        control(form, 'recipients').value = '';
        fileInput.value = '';
        fileRecipients = [];
        updateCount();
      },
    },
    onStarted,
  );
}

// ---- receipt sync -----------------------------------------------------------------------------

function setupSync(form: HTMLFormElement, api: ApiClient, onStarted: (task: Task) => void): void {
  wireForm<ReceiptSyncRequest>(
    form,
    {
      buildPayload() {
        const payload: ReceiptSyncRequest = {};
        const since = value(form, 'since');
        const query = value(form, 'query');
        if (since) payload.since = since; // <input type=date> gives YYYY-MM-DD already
        if (query) payload.query = query;
        return payload;
      },
      send: (payload) => api.startReceiptSync(payload),
      fieldFor: (path) => (typeof path[0] === 'string' ? path[0] : null),
    },
    onStarted,
  );
}

// ---- receipt bulk delete ----------------------------------------------------------------------

export function parseReceiptIds(text: string): { ids: number[]; bad: string[] } {
  const tokens = text.split(/[\s,;]+/).filter(Boolean);
  const bad = tokens.filter((s) => !/^\d+$/.test(s) || !Number.isSafeInteger(Number(s)) || Number(s) <= 0);
  return { ids: tokens.filter((s) => !bad.includes(s)).map(Number), bad };
}

function setupDelete(form: HTMLFormElement, api: ApiClient, onStarted: (task: Task) => void): void {
  const sources = required<HTMLDataListElement>(document, '#receipt-sources');
  sources.replaceChildren(...RECEIPT_SOURCES.map((source) => new Option('', source)));

  function syncMode(): void {
    const mode = choice(form, 'mode') || 'ids';
    for (const group of form.querySelectorAll<HTMLElement>('[data-mode]')) group.hidden = group.dataset.mode !== mode;
  }
  for (const radio of form.querySelectorAll('input[name="mode"]')) radio.addEventListener('change', syncMode);
  form.addEventListener('reset', () => setTimeout(syncMode));
  syncMode();

  wireForm<ReceiptDeleteRequest>(
    form,
    {
      buildPayload() {
        if ((choice(form, 'mode') || 'ids') === 'ids') {
          const { ids, bad } = parseReceiptIds(value(form, 'receipt_ids'));
          if (bad.length) throw new FormProblem(t('delete.badIds', { ids: bad.slice(0, 10).join(', ') }), 'receipt_ids');
          if (!ids.length) throw new FormProblem(t('delete.noIds'), 'receipt_ids');
          return { receipt_ids: [...new Set(ids)] };
        }
        const filter: NonNullable<ReceiptDeleteRequest['filter']> = {};
        const source = RECEIPT_SOURCES.find((s) => s === value(form, 'source'));
        if (value(form, 'source') && !source) throw new FormProblem(`${value(form, 'source')}: ${RECEIPT_SOURCES.join(', ')}`, 'source');
        if (source) filter.source = source;
        const before = value(form, 'before');
        const after = value(form, 'after');
        if (before) filter.before = before;
        if (after) filter.after = after;
        // An empty filter matches every receipt of the business: make that a deliberate choice.
        if (!Object.keys(filter).length && !(control(form, 'confirm_all') as HTMLInputElement).checked) {
          throw new FormProblem(t('delete.emptyFilter'), 'source');
        }
        return { filter };
      },
      send: (payload) => api.startReceiptDelete(payload),
      fieldFor(path) {
        if (path[0] === 'filter') return typeof path[1] === 'string' ? path[1] : 'source';
        if (path[0] === 'receipt_ids') return 'receipt_ids';
        return null;
      },
      afterSuccess() {
        control(form, 'receipt_ids').value = '';
        (control(form, 'confirm_all') as HTMLInputElement).checked = false;
      },
    },
    onStarted,
  );
}

/** Wire all start forms. `setEnabled(false)` (viewer role) disables them: the API would say 403. */
export function setupStartForms(api: ApiClient, onStarted: (task: Task) => void): { setEnabled(enabled: boolean): void } {
  const forms = ['broadcast-form', 'sync-form', 'delete-form'].map((id) => required<HTMLFormElement>(document, `#${id}`));
  const [broadcast, sync, remove] = forms as [HTMLFormElement, HTMLFormElement, HTMLFormElement];
  setupBroadcast(broadcast, api, onStarted);
  setupSync(sync, api, onStarted);
  setupDelete(remove, api, onStarted);
  return {
    setEnabled(enabled) {
      for (const form of forms) required<HTMLFieldSetElement>(form, 'fieldset.form-body').disabled = !enabled;
    },
  };
}
