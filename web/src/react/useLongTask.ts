// Follow one task: its REST snapshot over Server-Sent Events (resuming with Last-Event-ID when
// the stream drops), falling back to polling, until its terminal snapshot; then nothing more is
// requested. Works cross-origin when the service's CORS_ORIGINS names the host's origin.

import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { ApiError, createApiClient } from '../api/client.js';
import type { Task } from '../api/types.js';
import { LiveFeed, TASK_POLL_MS } from '../live.js';
import { asTask, isTerminal } from '../snapshots.js';

export interface UseLongTaskOptions {
  /** The service's origin (e.g. "https://tasks.example.com"); default: this page's origin. */
  baseUrl?: string;
  /** A bearer token for the task's business. */
  token?: string | null;
  /** Called once, with the terminal snapshot. */
  onComplete?: (task: Task) => void;
  /** Polling interval when the stream is unavailable (default 2.5 s). */
  pollIntervalMs?: number;
}

export interface UseLongTaskResult {
  /** The latest REST snapshot; null until the first one arrives. */
  task: Task | null;
  /** The last error reading the task (cleared by the next snapshot). */
  error: Error | null;
  /** Ask the service to cancel the task; resolves with the task's state. */
  cancel: () => Promise<Task>;
}

// Answers after which retrying cannot help: a bad token, a weak role, a task that is gone.
const FINAL_STATUSES = new Set([401, 403, 404]);

export function useLongTask(taskId: number | null | undefined, options: UseLongTaskOptions = {}): UseLongTaskResult {
  const { baseUrl, token, pollIntervalMs = TASK_POLL_MS } = options;
  const [state, setState] = useState<{ id: number | null; task: Task | null; error: Error | null }>({
    id: null,
    task: null,
    error: null,
  });
  const onComplete = useRef(options.onComplete);
  onComplete.current = options.onComplete;
  const tokenRef = useRef(token ?? null);
  tokenRef.current = token ?? null;

  const client = useMemo(() => createApiClient({ baseUrl, getToken: () => tokenRef.current }), [baseUrl]);
  // The newest snapshot of the followed task, shared by the feed and `cancel`.
  const accept = useRef<(data: unknown) => void>(() => {});

  useEffect(() => {
    if (taskId === null || taskId === undefined) {
      setState({ id: null, task: null, error: null });
      return;
    }
    let latest: Task | null = null;
    let completed = false;
    setState({ id: taskId, task: null, error: null });

    accept.current = (data: unknown) => {
      const snapshot = asTask(data);
      if (!snapshot || snapshot.id !== taskId) return;
      // Strictly newer only: a snapshot seen twice (a resumed stream, a poll) changes nothing.
      if (latest && (isTerminal(latest) || snapshot.version <= latest.version)) return;
      latest = snapshot;
      setState({ id: taskId, task: snapshot, error: null });
      if (isTerminal(snapshot) && !completed) {
        completed = true;
        onComplete.current?.(snapshot);
      }
    };

    const feed = new LiveFeed<unknown>({
      streamUrl: () => client.taskEventsUrl(taskId),
      poll: () => client.getTask(taskId),
      onData: (data) => accept.current(data),
      isDone: () => latest !== null && isTerminal(latest),
      onPollError: (err) => {
        setState((s) => ({ ...s, error: err instanceof Error ? err : new Error(String(err)) }));
        return err instanceof ApiError && FINAL_STATUSES.has(err.status);
      },
      pollMs: pollIntervalMs,
    });
    feed.start();
    return () => {
      feed.stop();
      accept.current = () => {};
    };
  }, [client, taskId, pollIntervalMs]);

  const cancel = useCallback(async () => {
    if (taskId === null || taskId === undefined) throw new Error('no task to cancel');
    const task = await client.cancelTask(taskId);
    accept.current(task);
    return task;
  }, [client, taskId]);

  // Until the effect for a new task id has run, do not show the previous task's state.
  const current = state.id === taskId ? state : { task: null, error: null };
  return { task: current.task, error: current.error, cancel };
}
