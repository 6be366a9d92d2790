// The three "start a task" forms: #broadcast-form, #sync-form, #delete-form.
//
// Each form validates what the browser can know (something to send, well-formed ids), builds the
// JSON body of its endpoint, and shows the API's answer next to itself: the started task, or the
// error `detail` (a string, or FastAPI's 422 list mapped back onto the form's fields).

import { t, formatNumber } from './i18n.js';
import { ApiError } from './api.js';
import { parseRecipientText, recipientsFromFile } from './recipients.js';

/** A validation problem found before calling the API. */
class FormProblem extends Error {
  constructor(message, field) {
    super(message);
    this.field = field;
  }
}

/**
 * Wire one form.
 * @param {HTMLFormElement} form
 * @param {object} spec
 * @param {() => Promise<object>} spec.buildPayload  may throw FormProblem
 * @param {(payload: object) => Promise<{task: object}>} spec.send
 * @param {(path: (string|number)[]) => string|null} spec.fieldFor  422 loc -> form control name
 * @param {(task: object) => void} onStarted
 */
function wireForm(form, spec, onStarted) {
  const errorBox = form.querySelector('[data-role="form-error"]');
  const statusBox = form.querySelector('[data-role="form-status"]');
  const submit = form.querySelector('button[type="submit"]');

  function clearMessages() {
    errorBox.replaceChildren();
    errorBox.hidden = true;
    statusBox.textContent = '';
    delete statusBox.dataset.startedId;
    for (const c of form.querySelectorAll('[aria-invalid="true"]')) c.removeAttribute('aria-invalid');
  }

  function showErrors(lines, fields = []) {
    errorBox.replaceChildren();
    if (lines.length > 1) {
      errorBox.append(t('start.fixErrors'));
      const ul = document.createElement('ul');
      for (const line of lines) {
        const li = document.createElement('li');
        li.textContent = line;
        ul.append(li);
      }
      errorBox.append(ul);
    } else errorBox.textContent = lines[0] ?? '';
    errorBox.hidden = false;
    let first = null;
    for (const name of fields) {
      const control = name && form.elements.namedItem(name);
      if (control && 'setAttribute' in control) {
        control.setAttribute('aria-invalid', 'true');
        first ??= control;
      }
    }
    first?.focus?.();
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (form.dataset.busy === 'true') return;
    clearMessages();
    form.dataset.busy = 'true';
    submit.disabled = true;
    submit.textContent = t('start.submitting');
    try {
      const payload = await spec.buildPayload();
      const res = await spec.send(payload);
      const task = res?.task;
      if (!task) throw new ApiError(500, 'no task in the response');
      statusBox.dataset.startedId = String(task.id);
      statusBox.textContent = t('start.started', { id: task.id });
      // The broadcast endpoint says what it made of the list: worth showing before the task runs.
      if (Number.isFinite(res.recipients_accepted)) {
        statusBox.textContent += ' ' + t('broadcast.intake', {
          accepted: formatNumber(res.recipients_accepted),
          invalid: formatNumber(res.recipients_invalid ?? 0),
          duplicates: formatNumber(res.duplicates_dropped ?? 0),
        });
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
      else showErrors([String(err?.message ?? err)]);
    } finally {
      form.dataset.busy = 'false';
      submit.disabled = false;
      submit.textContent = t('start.submit');
    }
  });

  document.addEventListener('longtasks:langchange', () => {
    if (statusBox.dataset.startedId) statusBox.textContent = t('start.started', { id: statusBox.dataset.startedId });
    if (form.dataset.busy !== 'true') submit.textContent = t('start.submit');
  });

  // Editing a flagged field clears its flag: the old message no longer describes it.
  form.addEventListener('input', (ev) => ev.target.removeAttribute?.('aria-invalid'));
}

const value = (form, name) => String(form.elements.namedItem(name)?.value ?? '').trim();

// ---- broadcast --------------------------------------------------------------------------------

function setupBroadcast(form, api, onStarted) {
  let fileRecipients = [];
  const countBox = form.querySelector('[data-role="recipient-count"]');
  const fileInput = form.elements.namedItem('recipients_file');

  function recipients() {
    return [...parseRecipientText(value(form, 'recipients')), ...fileRecipients];
  }

  function updateCount() {
    countBox.textContent = t('broadcast.recipientCount', { count: formatNumber(recipients().length) });
  }

  function syncKind() {
    const kind = form.elements.namedItem('message_kind').value || 'text';
    for (const group of form.querySelectorAll('[data-kind]')) {
      const on = group.dataset.kind === kind;
      group.hidden = !on;
      for (const c of group.querySelectorAll('[data-required]')) c.required = on;
    }
  }

  fileInput.addEventListener('change', async () => {
    fileRecipients = [];
    try {
      fileRecipients = await recipientsFromFile(fileInput.files?.[0]);
    } catch (err) {
      fileInput.setAttribute('aria-invalid', 'true');
      countBox.textContent = t('broadcast.fileError', { reason: String(err?.message ?? err) });
      return;
    }
    updateCount();
  });
  form.elements.namedItem('recipients').addEventListener('input', updateCount);
  for (const radio of form.querySelectorAll('input[name="message_kind"]')) radio.addEventListener('change', syncKind);
  document.addEventListener('longtasks:langchange', updateCount);
  form.addEventListener('reset', () => {
    fileRecipients = [];
    setTimeout(() => {
      syncKind();
      updateCount();
    });
  });
  syncKind();
  updateCount();

  wireForm(
    form,
    {
      async buildPayload() {
        // The change handler may still be parsing a just-picked file: read it again to be sure.
        if (fileInput.files?.[0]) fileRecipients = await recipientsFromFile(fileInput.files[0]);
        const name = value(form, 'name');
        if (!name) throw new FormProblem(t('broadcast.noName'), 'name');
        const list = recipients();
        if (!list.length) throw new FormProblem(t('broadcast.noRecipients'), 'recipients');
        const payload = { name, recipients: list };
        if (form.elements.namedItem('message_kind').value === 'template') {
          const name = value(form, 'template_name');
          const language = value(form, 'template_language');
          if (!name || !language) throw new FormProblem(t('broadcast.noTemplate'), name ? 'template_language' : 'template_name');
          const params = value(form, 'template_params')
            .split(/\r?\n/)
            .map((s) => s.trim())
            .filter(Boolean);
          payload.message = { template: { name, language, params } };
        } else {
          const text = String(form.elements.namedItem('text').value ?? '');
          if (!text.trim()) throw new FormProblem(t('broadcast.noText'), 'text');
          payload.message = { text };
        }
        const startAt = value(form, 'start_at');
        if (startAt) {
          // datetime-local has no zone: it is the user's local time. Send an absolute instant.
          const when = new Date(startAt);
          if (Number.isNaN(when.getTime())) throw new FormProblem(t('broadcast.badStartAt'), 'start_at');
          payload.start_at = when.toISOString();
        }
        const priority = value(form, 'priority');
        if (priority && priority !== 'normal') payload.priority = priority;
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
        form.elements.namedItem('recipients').value = '';
        fileInput.value = '';
        fileRecipients = [];
        updateCount();
      },
    },
    onStarted,
  );
}

// ---- receipt sync -----------------------------------------------------------------------------

function setupSync(form, api, onStarted) {
  wireForm(
    form,
    {
      async buildPayload() {
        const payload = {};
        const since = value(form, 'since');
        const query = value(form, 'query');
        if (since) payload.since = since; // <input type=date> already gives YYYY-MM-DD
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

export function parseReceiptIds(text) {
  const tokens = String(text ?? '')
    .split(/[\s,;]+/)
    .filter(Boolean);
  const bad = tokens.filter((s) => !/^\d+$/.test(s) || !Number.isSafeInteger(Number(s)) || Number(s) <= 0);
  return { ids: tokens.filter((s) => !bad.includes(s)).map(Number), bad };
}

function setupDelete(form, api, onStarted) {
  function syncMode() {
    const mode = form.elements.namedItem('mode').value || 'ids';
    for (const group of form.querySelectorAll('[data-mode]')) group.hidden = group.dataset.mode !== mode;
  }
  for (const radio of form.querySelectorAll('input[name="mode"]')) radio.addEventListener('change', syncMode);
  form.addEventListener('reset', () => setTimeout(syncMode));
  syncMode();

  wireForm(
    form,
    {
      async buildPayload() {
        if ((form.elements.namedItem('mode').value || 'ids') === 'ids') {
          const { ids, bad } = parseReceiptIds(value(form, 'receipt_ids'));
          if (bad.length) throw new FormProblem(t('delete.badIds', { ids: bad.slice(0, 10).join(', ') }), 'receipt_ids');
          if (!ids.length) throw new FormProblem(t('delete.noIds'), 'receipt_ids');
          return { receipt_ids: [...new Set(ids)] };
        }
        const filter = {};
        for (const name of ['source', 'before', 'after']) {
          const v = value(form, name);
          if (v) filter[name] = v;
        }
        // An empty filter matches every receipt of the business: make that a deliberate choice.
        if (!Object.keys(filter).length && !form.elements.namedItem('confirm_all').checked) {
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
        form.elements.namedItem('receipt_ids').value = '';
        form.elements.namedItem('confirm_all').checked = false;
      },
    },
    onStarted,
  );
}

/**
 * Wire all start forms. `enabled` false (viewer role) disables them: the API would answer 403.
 * @returns {{setEnabled(enabled: boolean): void}}
 */
export function setupStartForms(api, onStarted) {
  const forms = {
    broadcast: document.getElementById('broadcast-form'),
    sync: document.getElementById('sync-form'),
    delete: document.getElementById('delete-form'),
  };
  setupBroadcast(forms.broadcast, api, onStarted);
  setupSync(forms.sync, api, onStarted);
  setupDelete(forms.delete, api, onStarted);
  return {
    setEnabled(enabled) {
      for (const form of Object.values(forms)) {
        form.querySelector('fieldset.form-body').disabled = !enabled;
      }
    },
  };
}
