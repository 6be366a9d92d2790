// @longtasks/ui/react: the seed's LongTaskStatusCard and useLongTaskPersistence, and useLongTask.
export {
  DEFAULT_REFRESH_INTERVAL_MS,
  LongTaskStatusCard,
  taskCardProps,
  type LongTaskStatusCardProps,
} from './LongTaskStatusCard.js';
export { useLongTask, type UseLongTaskOptions, type UseLongTaskResult } from './useLongTask.js';
export { useLongTaskPersistence, type SaveTaskInput, type UseLongTaskPersistenceResult } from './useLongTaskPersistence.js';
export type { TrackedTask } from '../persistence.js';
