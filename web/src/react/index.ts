// @longtasks/ui/react: the seed's LongTaskStatusCard and useLongTaskPersistence, and useLongTask.
export {
  DEFAULT_REFRESH_INTERVAL_MS,
  LongTaskStatusCard,
  taskCardProps,
  type LongTaskStatusCardProps,
} from './LongTaskStatusCard';
export { useLongTask, type UseLongTaskOptions, type UseLongTaskResult } from './useLongTask';
export { useLongTaskPersistence, type SaveTaskInput, type UseLongTaskPersistenceResult } from './useLongTaskPersistence';
export type { TrackedTask } from '../persistence';
