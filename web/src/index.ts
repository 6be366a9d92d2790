// @longtasks/ui: the <long-task-card> element, the typed API client, and the pieces both the
// service page and the React bindings are built from. Importing it registers the element.

import { defineLongTaskCard } from './card/element.js';

defineLongTaskCard();

export { LongTaskCard, defineLongTaskCard, type CardActions, type CardTask } from './card/element.js';
export { percentOf, ProgressTracker } from './card/progress.js';
export {
  ApiError,
  createApiClient,
  readableError,
  type ApiClient,
  type ApiClientOptions,
  type ErrorDetail,
  type FieldError,
  type ListItemsQuery,
  type ListTasksQuery,
} from './api/client.js';
export * from './api/types.js';
export { asTask, isActiveStatus, isNewerSnapshot, isTerminal, isTerminalStatus, type TaskSnapshot } from './snapshots.js';
export { LiveFeed, LIST_POLL_MS, TASK_POLL_MS, type FeedMode, type LiveFeedOptions } from './live.js';
export {
  createBusinessPersistence,
  createTaskPersistence,
  ENTRY_TTL_MS,
  expiresAt,
  storageKey,
  TERMINAL_TTL_MS,
  type BusinessPersistence,
  type PersistenceOptions,
  type TaskPersistence,
  type TrackedTask,
} from './persistence.js';
export { matchesFilters, TaskStore, type Filters, type Received, type StoreState, type TaskView } from './store.js';
export {
  formatDateTime,
  formatDecimal,
  formatDuration,
  formatNumber,
  getLang,
  interpolate,
  isLang,
  LANG_CHANGE_EVENT,
  langDir,
  LANGS,
  setLang,
  translator,
  type Lang,
  type Vars,
} from './i18n/core.js';
export { priorityLabel, statusLabel, typeLabel } from './i18n/messages.js';
