// What a card derives from the snapshots it has seen: percent, rate, ETA, and "stalled".
// Kept apart from the DOM so each rule is one small function with a clock passed in.

import type { TaskSnapshot } from '../snapshots.js';

const RATE_WINDOW_MS = 60_000; // rate over the last minute: smooth, yet reacts to a slowdown

interface Sample {
  at: number;
  processed: number;
}

const num = (v: unknown): number => {
  const n = Number(v);
  return Number.isFinite(n) ? n : 0;
};

export function percentOf(task: TaskSnapshot): number {
  let pct = task.progress_pct ?? Number.NaN;
  if (!Number.isFinite(pct)) {
    const total = num(task.total_items);
    pct = total > 0 ? (100 * num(task.processed_items)) / total : task.status === 'completed' ? 100 : 0;
  }
  return Math.min(100, Math.max(0, pct));
}

export class ProgressTracker {
  private samples: Sample[] = [];
  private lastChangeAt = 0;
  private task: TaskSnapshot | null = null;

  /** Record a snapshot the card accepted, received at `at` (client clock). */
  observe(next: TaskSnapshot, at: number, opts: { placeholder?: boolean } = {}): void {
    const prev = this.task;
    this.task = next;
    const processed = num(next.processed_items);
    const becameRunning = next.status === 'running' && prev?.status !== 'running';
    if (opts.placeholder) {
      // A tracked task re-opened after a reload carries no progress yet: 0 -> N later must not
      // look like a burst of speed.
      this.samples = [];
      this.lastChangeAt = at;
      return;
    }
    if (!prev || becameRunning || num(prev.processed_items) !== processed) {
      this.lastChangeAt = at;
      if (becameRunning) this.samples = [];
      this.samples.push({ at, processed });
      const last = this.samples.at(-1);
      this.samples = this.samples.filter((s) => at - s.at <= RATE_WINDOW_MS || s === last);
    }
  }

  reset(): void {
    this.samples = [];
    this.task = null;
  }

  /** Items per second over the last minute; before two samples, the server-side average. */
  rate(): number | null {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (first && last && last !== first) {
      const dt = (last.at - first.at) / 1000;
      if (dt > 0) return (last.processed - first.processed) / dt;
    }
    const task = this.task;
    if (!task) return null;
    const elapsed = (Date.parse(task.updated_at ?? '') - Date.parse(task.started_at ?? '')) / 1000;
    if (Number.isFinite(elapsed) && elapsed > 1 && num(task.processed_items) > 0) return num(task.processed_items) / elapsed;
    return null;
  }

  /** Seconds without progress once that reaches `stallAfterS`, else 0 (only while running). */
  stalledFor(now: number, stallAfterS: number): number {
    if (this.task?.status !== 'running') return 0;
    const s = (now - this.lastChangeAt) / 1000;
    return s >= stallAfterS ? s : 0;
  }

  /** Seconds left at the current rate: the server's estimate when it sends one, else ours. */
  eta(rate: number | null): number | null {
    const task = this.task;
    if (!task) return null;
    const server = task.eta_seconds;
    if (typeof server === 'number' && Number.isFinite(server)) return server;
    const remaining = num(task.total_items) - num(task.processed_items);
    return rate !== null && rate > 0 && remaining > 0 ? remaining / rate : null;
  }
}

export { num };
