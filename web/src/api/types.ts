// The API's data shapes, named. Everything here derives from `schema.ts`, which
// openapi-typescript generates from the service's /openapi.json (`make web-types`): when the API
// gains a field, a task type or a status, the compiler points at every place that must follow.

import { priorityValues, receiptSourceValues, taskStatusValues, taskTypeValues, type components } from './schema.js';

type Schemas = components['schemas'];

export type Task = Schemas['TaskOut'];
export type TaskType = Schemas['TaskType'];
export type TaskStatus = Schemas['TaskStatus'];
export type Priority = Schemas['Priority'];
export type ReceiptSource = Schemas['ReceiptSource'];
export type TaskPage = Schemas['TaskPage'];
export type TaskEnvelope = Schemas['TaskEnvelope'];
export type Item = Schemas['ItemOut'];
export type ItemPage = Schemas['ItemPage'];
export type BroadcastRequest = Schemas['BroadcastIn'];
export type BroadcastStarted = Schemas['BroadcastStarted'];
export type ReceiptSyncRequest = Schemas['SyncIn'];
export type ReceiptSyncStarted = Schemas['SyncStarted'];
export type ReceiptDeleteRequest = Schemas['BulkDeleteIn'];
export type ReceiptDeleteStarted = Schemas['BulkDeleteStarted'];
export type ValidationIssue = Schemas['ValidationError'];
export type TicketOut = Schemas['TicketOut'];

/** Every task type and status the API can answer with, in the spec's order. */
export const TASK_TYPES: readonly TaskType[] = taskTypeValues;
export const TASK_STATUSES: readonly TaskStatus[] = taskStatusValues;
export const PRIORITIES: readonly Priority[] = priorityValues;
export const RECEIPT_SOURCES: readonly ReceiptSource[] = receiptSourceValues;

/**
 * What each status means for a watcher. A `Record` over the spec's statuses: a status added to
 * the API does not compile until it is placed here.
 *  - active: work is going on or will start by itself; follow it, offer cancel;
 *  - terminal: nothing will change any more; stop following it.
 */
export const STATUS_PHASE: Record<TaskStatus, 'active' | 'terminal'> = {
  // Waits for a person (approve or reject); still cancellable, and it may start at any moment.
  awaiting_approval: 'active',
  scheduled: 'active',
  running: 'active',
  // Resumable: the watcher keeps following it.
  paused: 'active',
  completed: 'terminal',
  cancelled: 'terminal',
  failed: 'terminal',
  // Nobody approved it in time.
  expired: 'terminal',
};

/**
 * A broadcast's items by delivery state (the API's `DeliveryOut`): shown when present. A host
 * passing counts of its own may give the four WhatsApp states only.
 */
export type DeliveryCounts = Pick<Schemas['DeliveryOut'], 'accepted' | 'delivered' | 'read' | 'failed'> &
  Partial<Pick<Schemas['DeliveryOut'], 'pending' | 'unconfirmed' | 'resent'>>;
