// Tracked tasks that survive a reload: the seed's useLongTaskPersistence semantics, framework-free.
//
// Key:   longtasks:active:{business_id}:{task_type}
// Value: [{taskId, taskType, status, savedAt}]   (savedAt: epoch ms)
//
// Only ids and statuses are stored: no token, no names, phones or message text, because
// localStorage outlives the session and every tab and script of the origin reads it.
//
// Lifetimes (the seed's rules):
//  - an entry not refreshed for ENTRY_TTL_MS (1 hour) expires;
//  - a terminal entry is cleared TERMINAL_TTL_MS (5 minutes) after it was first saved terminal,
//    long enough to read the outcome after a reload;
//  - dismissing clears an entry at once.
// Every write re-reads storage first, so two tabs tracking different tasks never drop each
// other's entries; `subscribe` hears writes from this tab and (through `storage` events) others.

import type { TaskStatus, TaskType } from './api/types.js';
import { isTerminalStatus } from './snapshots.js';

export const ENTRY_TTL_MS = 60 * 60 * 1000;
export const TERMINAL_TTL_MS = 5 * 60 * 1000;
// A running task's entry is re-saved on updates, but at most this often: a busy task sends
// several snapshots a second and each write is synchronous.
const REFRESH_EVERY_MS = 60 * 1000;
const KEY_PREFIX = 'longtasks:active';
const SAME_TAB_EVENT = 'longtasks:tracked';

export interface TrackedTask {
  taskId: number;
  taskType: TaskType;
  status: TaskStatus;
  savedAt: number;
}

export interface PersistenceOptions {
  storage?: Storage;
  now?: () => number;
}

export function storageKey(businessId: number, taskType: string): string {
  return `${KEY_PREFIX}:${businessId}:${taskType}`;
}

/** When an entry stops being live (epoch ms). */
export function expiresAt(entry: TrackedTask): number {
  return entry.savedAt + (isTerminalStatus(entry.status) ? TERMINAL_TTL_MS : ENTRY_TTL_MS);
}

function isEntry(e: unknown): e is TrackedTask {
  if (!e || typeof e !== 'object') return false;
  const r = e as Record<string, unknown>;
  return (
    Number.isSafeInteger(r.taskId) && typeof r.taskType === 'string' && typeof r.status === 'string' && typeof r.savedAt === 'number'
  );
}

export interface TaskPersistence {
  readonly key: string;
  /** Live entries, newest task first; expired ones are removed from storage on the way. */
  list(): TrackedTask[];
  /** Record or refresh a task; writes only when something that matters changed. */
  save(taskId: number, status: TaskStatus): void;
  /** Like `save`, for a task still tracked only: an expired or cleared entry stays gone. */
  refresh(taskId: number, status: TaskStatus): void;
  clear(taskId: number): void;
  has(taskId: number): boolean;
  /** The earliest moment an entry expires, or null when nothing is tracked. */
  nextExpiry(): number | null;
  /** Called after any change to this key, from this tab or another; returns an unsubscribe. */
  subscribe(listener: () => void): () => void;
}

/** Persistence for one (business, task type). */
export function createTaskPersistence(businessId: number, taskType: TaskType, opts: PersistenceOptions = {}): TaskPersistence {
  const storage = opts.storage ?? globalThis.localStorage;
  const now = opts.now ?? Date.now;
  const key = storageKey(businessId, taskType);

  function read(): TrackedTask[] {
    let raw: string | null;
    try {
      raw = storage.getItem(key);
    } catch (err) {
      console.warn(`[longtasks] cannot read ${key} from localStorage:`, err);
      return [];
    }
    if (!raw) return [];
    try {
      const parsed: unknown = JSON.parse(raw);
      if (!Array.isArray(parsed)) throw new Error('not an array');
      return parsed.filter(isEntry);
    } catch (err) {
      // A corrupt value would break every later load: drop it.
      console.warn(`[longtasks] discarding unreadable ${key}:`, err);
      write([]);
      return [];
    }
  }

  function write(entries: TrackedTask[]): void {
    try {
      if (entries.length) storage.setItem(key, JSON.stringify(entries));
      else storage.removeItem(key);
    } catch (err) {
      // Quota exceeded or storage disabled: tracking still works until a reload.
      console.warn(`[longtasks] cannot write ${key} to localStorage:`, err);
    }
    // Other tabs hear a `storage` event; this tab's other readers hear this one.
    globalThis.dispatchEvent(new CustomEvent(SAME_TAB_EVENT, { detail: { key } }));
  }

  function list(): TrackedTask[] {
    const t = now();
    const all = read();
    const live = all.filter((e) => expiresAt(e) > t);
    if (live.length !== all.length) write(live);
    return live.sort((a, b) => b.taskId - a.taskId);
  }

  function save(taskId: number, status: TaskStatus, create = true): void {
    const t = now();
    const entries = list();
    const existing = entries.find((e) => e.taskId === taskId);
    if (!existing && !create) return;
    if (existing) {
      // A terminal entry keeps the moment it became terminal: its 5 minutes do not restart.
      if (existing.status === status && (isTerminalStatus(status) || t - existing.savedAt < REFRESH_EVERY_MS)) return;
      existing.status = status;
      existing.savedAt = t;
    } else {
      entries.unshift({ taskId, taskType, status, savedAt: t });
    }
    write(entries);
  }

  function clear(taskId: number): void {
    const entries = read();
    const kept = entries.filter((e) => e.taskId !== taskId);
    if (kept.length !== entries.length) write(kept);
  }

  function subscribe(listener: () => void): () => void {
    const onStorage = (ev: StorageEvent) => {
      if (ev.key === key || ev.key === null) listener();
    };
    const onSameTab = (ev: Event) => {
      if ((ev as CustomEvent<{ key: string }>).detail.key === key) listener();
    };
    globalThis.addEventListener('storage', onStorage);
    globalThis.addEventListener(SAME_TAB_EVENT, onSameTab);
    return () => {
      globalThis.removeEventListener('storage', onStorage);
      globalThis.removeEventListener(SAME_TAB_EVENT, onSameTab);
    };
  }

  return {
    key,
    list,
    save: (taskId, status) => save(taskId, status),
    refresh: (taskId, status) => save(taskId, status, false),
    clear,
    has: (taskId) => list().some((e) => e.taskId === taskId),
    nextExpiry: () => {
      const times = read().map(expiresAt);
      return times.length ? Math.min(...times) : null;
    },
    subscribe,
  };
}

export interface BusinessPersistence {
  listAll(): TrackedTask[];
  save(task: { id: number; task_type: TaskType; status: TaskStatus }): void;
  refresh(task: { id: number; task_type: TaskType; status: TaskStatus }): void;
  clear(task: { id: number; task_type: TaskType }): void;
  has(task: { id: number; task_type: TaskType }): boolean;
}

/** One persistence per task type of a business, and helpers across them (the service page). */
export function createBusinessPersistence(
  businessId: number,
  taskTypes: readonly TaskType[],
  opts?: PersistenceOptions,
): BusinessPersistence {
  const byType = new Map(taskTypes.map((type) => [type, createTaskPersistence(businessId, type, opts)]));
  return {
    listAll: () => [...byType.values()].flatMap((p) => p.list()).sort((a, b) => b.taskId - a.taskId),
    save: (task) => byType.get(task.task_type)?.save(task.id, task.status),
    refresh: (task) => byType.get(task.task_type)?.refresh(task.id, task.status),
    clear: (task) => byType.get(task.task_type)?.clear(task.id),
    has: (task) => byType.get(task.task_type)?.has(task.id) ?? false,
  };
}
