// The seed's useLongTaskPersistence: the tasks a user started, kept in localStorage so they
// survive a reload, scoped by business and task type, expiring after an hour (five minutes once
// finished). Only ids and statuses are stored. Two tabs, or two components of one tab, see each
// other's changes and never overwrite each other's entries.

import { useCallback, useEffect, useMemo, useState } from 'react';
import type { TaskStatus, TaskType } from '../api/types.js';
import { createTaskPersistence, type PersistenceOptions, type TrackedTask } from '../persistence.js';

export interface SaveTaskInput {
  taskId: number;
  taskType?: TaskType;
  status: TaskStatus;
}

export interface UseLongTaskPersistenceResult {
  /** The newest tracked task, or null. */
  activeTask: TrackedTask | null;
  /** Every tracked task of this business and type, newest first. */
  tasks: TrackedTask[];
  /** Track a task, or update its status. */
  saveTask: (task: SaveTaskInput) => void;
  /** Stop tracking a task (default: the active one). */
  clearTask: (taskId?: number) => void;
}

function sameEntries(a: TrackedTask[], b: TrackedTask[]): boolean {
  return (
    a.length === b.length &&
    a.every((e, i) => {
      const o = b.at(i);
      return o !== undefined && e.taskId === o.taskId && e.status === o.status && e.savedAt === o.savedAt;
    })
  );
}

export function useLongTaskPersistence(
  businessId: number,
  taskType: TaskType,
  options?: PersistenceOptions,
): UseLongTaskPersistenceResult {
  const { storage, now } = options ?? {};
  const persistence = useMemo(
    () => createTaskPersistence(businessId, taskType, { storage, now }),
    [businessId, taskType, storage, now],
  );
  const [tasks, setTasks] = useState<TrackedTask[]>(() => persistence.list());

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const clock = now ?? Date.now;
    const refresh = () => {
      const live = persistence.list();
      setTasks((prev) => (sameEntries(prev, live) ? prev : live));
      // Wake up when the next entry expires, so a finished task leaves without a reload.
      clearTimeout(timer);
      const next = persistence.nextExpiry();
      if (next !== null) timer = setTimeout(refresh, Math.min(Math.max(0, next - clock()), 2 ** 31 - 1));
    };
    refresh();
    const unsubscribe = persistence.subscribe(refresh);
    return () => {
      unsubscribe();
      clearTimeout(timer);
    };
  }, [persistence, now]);

  const saveTask = useCallback(
    (task: SaveTaskInput) => {
      if (task.taskType !== undefined && task.taskType !== taskType) {
        console.warn(`[longtasks] saveTask: a ${task.taskType} task given to the ${taskType} tracker; ignored`);
        return;
      }
      persistence.save(task.taskId, task.status);
    },
    [persistence, taskType],
  );

  const activeTask = tasks[0] ?? null;
  const clearTask = useCallback(
    (taskId?: number) => {
      const id = taskId ?? activeTask?.taskId;
      if (id !== undefined) persistence.clear(id);
    },
    [persistence, activeTask],
  );

  return { activeTask, tasks, saveTask, clearTask };
}
