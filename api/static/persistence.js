// Tracked ("active") tasks that survive a reload: the seed's useLongTaskPersistence, without React.
//
// Key:   longtasks:active:{business_id}:{task_type}
// Value: [{taskId, taskType, status, savedAt}]   (savedAt: epoch ms)
//
// Only ids and statuses are stored: no token, no names, phones or message text, because
// localStorage outlives the session and is shared by every tab of the origin.
//
// Lifetimes (the seed's rules):
//  - an entry not refreshed for ENTRY_TTL_MS (1 hour) expires: the task is probably long gone
//    from the user's mind, and the task list still shows it;
//  - a terminal entry (completed/cancelled/failed) is cleared TERMINAL_TTL_MS (5 minutes) after
//    the page first saw it terminal, long enough to read the outcome after a reload;
//  - dismissing a card clears its entry at once.

export const ENTRY_TTL_MS = 60 * 60 * 1000;
export const TERMINAL_TTL_MS = 5 * 60 * 1000;
// While a task runs its entry is re-saved on updates, but at most this often: a busy task
// sends several snapshots a second and each write is synchronous.
const REFRESH_EVERY_MS = 60 * 1000;

const KEY_PREFIX = 'longtasks:active';
const TASK_TYPES = ['broadcast', 'receipt_delete', 'receipt_sync'];
const TERMINAL = new Set(['completed', 'cancelled', 'failed']);

export function storageKey(businessId, taskType) {
  return `${KEY_PREFIX}:${businessId}:${taskType}`;
}

function isLive(entry, now) {
  const age = now - entry.savedAt;
  if (TERMINAL.has(entry.status)) return age < TERMINAL_TTL_MS;
  return age < ENTRY_TTL_MS;
}

function isValidEntry(e) {
  return (
    e &&
    Number.isSafeInteger(Number(e.taskId)) &&
    typeof e.taskType === 'string' &&
    typeof e.status === 'string' &&
    typeof e.savedAt === 'number'
  );
}

/**
 * Persistence for one (business, task type), like useLongTaskPersistence(businessId, taskType).
 * @param {number} businessId
 * @param {string} taskType
 * @param {{storage?: Storage, now?: () => number}} [opts] injectable for tests
 */
export function createTaskPersistence(businessId, taskType, { storage = window.localStorage, now = Date.now } = {}) {
  const key = storageKey(businessId, taskType);

  function read() {
    let raw;
    try {
      raw = storage.getItem(key);
    } catch (err) {
      console.warn(`[longtasks] cannot read ${key} from localStorage:`, err);
      return [];
    }
    if (!raw) return [];
    try {
      const parsed = JSON.parse(raw);
      if (!Array.isArray(parsed)) throw new Error('not an array');
      return parsed.filter(isValidEntry).map((e) => ({ ...e, taskId: Number(e.taskId) }));
    } catch (err) {
      // A corrupt value would otherwise break every future load: drop it.
      console.warn(`[longtasks] discarding unreadable ${key}:`, err);
      write([]);
      return [];
    }
  }

  function write(entries) {
    try {
      if (entries.length) storage.setItem(key, JSON.stringify(entries));
      else storage.removeItem(key);
    } catch (err) {
      // Quota exceeded or storage disabled: the card still works, it just won't survive a reload.
      console.warn(`[longtasks] cannot write ${key} to localStorage:`, err);
    }
  }

  /** Live entries, newest first; expired ones are removed from storage as a side effect. */
  function list() {
    const t = now();
    const all = read();
    const live = all.filter((e) => isLive(e, t));
    if (live.length !== all.length) write(live);
    return live.sort((a, b) => b.taskId - a.taskId);
  }

  /**
   * Record (or refresh) a task's entry. Writes only when something matters changed:
   * a new entry, a status change, or a running entry due for a refresh. A terminal entry keeps
   * the savedAt of the moment it became terminal, so the 5-minute clock is not restarted.
   */
  function save(taskId, status) {
    const t = now();
    const entries = list();
    const id = Number(taskId);
    const existing = entries.find((e) => e.taskId === id);
    if (existing) {
      if (existing.status === status) {
        if (TERMINAL.has(status) || t - existing.savedAt < REFRESH_EVERY_MS) return;
      }
      existing.status = status;
      existing.savedAt = t;
    } else {
      entries.unshift({ taskId: id, taskType, status, savedAt: t });
    }
    write(entries);
  }

  function clear(taskId) {
    const id = Number(taskId);
    const entries = read();
    const kept = entries.filter((e) => e.taskId !== id);
    if (kept.length !== entries.length) write(kept);
  }

  function has(taskId) {
    return list().some((e) => e.taskId === Number(taskId));
  }

  return { key, list, save, clear, has };
}

/** One persistence object per task type of a business, plus helpers that span them. */
export function createBusinessPersistence(businessId, opts) {
  const byType = Object.fromEntries(TASK_TYPES.map((type) => [type, createTaskPersistence(businessId, type, opts)]));
  const forType = (type) => byType[type] ?? null;
  return {
    forType,
    /** Every live entry across types, newest first (expired ones are pruned on the way). */
    listAll: () => TASK_TYPES.flatMap((type) => byType[type].list()).sort((a, b) => b.taskId - a.taskId),
    save: (task) => forType(task.task_type)?.save(task.id, task.status),
    clear: (task) => forType(task.task_type)?.clear(task.id),
    has: (task) => forType(task.task_type)?.has(task.id) ?? false,
  };
}
