// Task snapshots and the one rule for ordering them.
//
// Several feeds deliver the same task (a list page, the business stream, the task's own stream,
// polls, a cancel answer), so an older snapshot can arrive after a newer one. Every consumer
// (the page's store, the card, the React hook) asks `isNewerSnapshot` before replacing what it
// shows, so counts never go backwards and a finished task never comes back to life.

import { STATUS_PHASE, type DeliveryCounts, type Task } from './api/types.js';

/**
 * A task as the card needs it: the identity and status, the rest optional (the React card is
 * fed by props, which carry only some fields).
 */
export type TaskSnapshot = Pick<Task, 'id' | 'task_type' | 'status'> &
  Partial<Omit<Task, 'id' | 'task_type' | 'status' | 'delivery'>> & {
    // The API's counts (which add unconfirmed and re-sent), or the few a host passes as props.
    delivery?: DeliveryCounts | null;
  };

export function isTerminalStatus(status: string | undefined): boolean {
  return status !== undefined && (STATUS_PHASE as Record<string, string>)[status] === 'terminal';
}

export function isActiveStatus(status: string | undefined): boolean {
  return status !== undefined && (STATUS_PHASE as Record<string, string>)[status] === 'active';
}

export function isTerminal(task: { status?: string } | null | undefined): boolean {
  return isTerminalStatus(task?.status);
}

/**
 * Whether `next` may replace `prev`. `version` grows with every change of the task row (it is
 * the SSE event id); without versions, `updated_at` decides; without either, the newer arrival
 * wins. A terminal snapshot is never replaced by a non-terminal one.
 */
export function isNewerSnapshot(prev: TaskSnapshot, next: TaskSnapshot): boolean {
  if (isTerminal(prev) && !isTerminal(next)) return false;
  const pv = prev.version;
  const nv = next.version;
  if (typeof pv === 'number' && typeof nv === 'number') return nv >= pv;
  const a = Date.parse(prev.updated_at ?? '');
  const b = Date.parse(next.updated_at ?? '');
  return !(Number.isFinite(a) && Number.isFinite(b) && b < a);
}

/** `{task: {...}}` (start and cancel answers) or a bare task, checked for the fields we key on. */
export function asTask(data: unknown): Task | null {
  if (data === null || typeof data !== 'object') return null;
  const inner = 'task' in data && data.task && typeof data.task === 'object' ? data.task : data;
  const candidate = inner as Partial<Task>;
  return typeof candidate.id === 'number' && typeof candidate.status === 'string' ? (inner as Task) : null;
}
