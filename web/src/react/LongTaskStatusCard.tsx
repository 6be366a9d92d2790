// The seed's LongTaskStatusCard, for React 18 and 19 hosts: the same props, rendering the
// package's <long-task-card> element (one implementation of the card for every host).

import { createElement, useEffect, useLayoutEffect, useRef } from 'react';
import type { DeliveryCounts, Task, TaskType } from '../api/types.js';
import type { CardTask, LongTaskCard } from '../card/element.js';
import { defineLongTaskCard } from '../card/element.js';
import type { Lang } from '../i18n/core.js';
import { isTerminalStatus } from '../snapshots.js';

export const DEFAULT_REFRESH_INTERVAL_MS = 2_500; // the seed's default

export interface LongTaskStatusCardProps {
  // The seed's props, exactly as it lists them.
  taskId: number;
  taskType: TaskType;
  status: string;
  total?: number;
  processed?: number;
  success?: number;
  failed?: number;
  cancelled?: number;
  progressPct?: number;
  canCancel: boolean;
  cancelRequested?: boolean;
  onCancel: () => void;
  onDismiss?: () => void;
  /** Called to refresh the status: at once, then every `refreshInterval` while `autoRefresh`. */
  onRefresh?: () => void;
  autoRefresh?: boolean;
  refreshInterval?: number;
  // Beyond the seed, all optional.
  /** Broadcast delivery counts (accepted, delivered, read, failed). */
  delivery?: DeliveryCounts | null;
  errorMessage?: string | null;
  statusReason?: string | null;
  /** 'he' (right-to-left) or 'en'; default: the nearest lang attribute above the card. */
  lang?: Lang;
  /** Seconds without progress before a running task shows as stalled (default 30). */
  stallAfterS?: number;
  className?: string;
}

/** The card's props from a REST snapshot (e.g. `useLongTask`'s `task`), callbacks aside. */
export function taskCardProps(
  task: Task & { delivery?: DeliveryCounts | null },
): Omit<LongTaskStatusCardProps, 'onCancel' | 'onDismiss' | 'onRefresh' | 'canCancel'> & { canCancel: boolean } {
  return {
    taskId: task.id,
    taskType: task.task_type,
    status: task.status,
    total: task.total_items,
    processed: task.processed_items,
    success: task.success_count,
    failed: task.failed_count,
    cancelled: task.cancelled_count,
    progressPct: task.progress_pct,
    cancelRequested: task.cancel_requested,
    canCancel: !isTerminalStatus(task.status) && !task.cancel_requested,
    delivery: task.delivery ?? null,
    errorMessage: task.error_message,
    statusReason: task.status === 'cancelled' ? (task.cancel_reason ?? task.status_reason) : task.status_reason,
  };
}

export function LongTaskStatusCard(props: LongTaskStatusCardProps) {
  defineLongTaskCard();
  const ref = useRef<LongTaskCard | null>(null);
  // Hosts pass fresh closures on every render (the seed does): read the latest through refs so
  // the refresh timer is not restarted by each render.
  const latest = useRef(props);
  latest.current = props;

  const { taskId, taskType, status, autoRefresh = false, refreshInterval = DEFAULT_REFRESH_INTERVAL_MS } = props;
  const known = typeof status === 'string' && status !== '';
  const terminal = isTerminalStatus(status);

  useLayoutEffect(() => {
    const card = ref.current;
    if (!card) return;
    const p = latest.current;
    card.canCancel = p.canCancel;
    card.stallAfterS = p.stallAfterS ?? 30;
    card.actions = {
      cancel: () => latest.current.onCancel(),
      dismiss: p.onDismiss ? () => latest.current.onDismiss?.() : undefined,
    };
    const snapshot: CardTask = {
      id: p.taskId,
      task_type: p.taskType,
      // Before the host's first refresh it may have no status: the card shows "loading".
      status: (known ? p.status : '') as CardTask['status'],
      placeholder: !known,
      total_items: p.total ?? 0,
      processed_items: p.processed ?? 0,
      success_count: p.success ?? 0,
      failed_count: p.failed ?? 0,
      cancelled_count: p.cancelled ?? 0,
      progress_pct: p.progressPct ?? Number.NaN,
      cancel_requested: p.cancelRequested ?? false,
      delivery: p.delivery ?? null,
      error_message: p.errorMessage ?? null,
      status_reason: p.statusReason ?? null,
    };
    card.task = snapshot;
  });

  useEffect(() => {
    if (!autoRefresh || terminal) return;
    // At once: a task restored after a reload shows its real state without waiting an interval.
    latest.current.onRefresh?.();
    const timer = setInterval(() => latest.current.onRefresh?.(), refreshInterval);
    return () => clearInterval(timer);
  }, [autoRefresh, refreshInterval, taskId, terminal]);

  // Keyed by task: a different task gets a fresh card (its rate samples belong to the old one).
  return createElement('long-task-card', {
    key: `${taskType}:${taskId}`,
    ref,
    lang: props.lang,
    class: props.className,
  });
}
