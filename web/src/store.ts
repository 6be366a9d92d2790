// The task list's state in one place: snapshots in, views out.
//
// Every snapshot (a list page, the business stream, a task's own stream or poll, a start or
// cancel answer, a placeholder restored from localStorage) goes through `receive`, which keeps
// the newest per task (`isNewerSnapshot`), so the feeds can overlap without disagreeing. What
// the page shows is a function of this state (`visible()`), and listeners hear every change.

import type { Task, TaskPage, TaskStatus, TaskType } from './api/types.js';
import type { CardTask } from './card/element.js';
import { isNewerSnapshot, isTerminal } from './snapshots.js';

export interface Filters {
  taskType: TaskType | '';
  status: TaskStatus | '';
}

export interface StoreState {
  /** The newest snapshot seen per task id (shown or not). */
  readonly tasks: ReadonlyMap<number, CardTask>;
  /** Tasks this tab follows (localStorage). */
  readonly tracked: ReadonlySet<number>;
  /** Tasks the user hid in this tab. */
  readonly dismissed: ReadonlySet<number>;
  readonly filters: Filters;
  /** Ids that belong on the list: from a loaded page, or brought in on purpose. */
  readonly listed: ReadonlySet<number>;
  /** Tasks below this id belong to pages not loaded yet (-Infinity: all loaded). */
  readonly lowestLoadedId: number;
  readonly nextCursor: string | null;
  /** Why the last list load failed, or null. */
  readonly listError: string | null;
}

export interface TaskView {
  task: CardTask;
  tracked: boolean;
}

export interface Received {
  /** The snapshot the store holds now (the one given, or a newer one it already had). */
  task: CardTask;
  /** True exactly once per task: when a snapshot ends a task this store saw unfinished. */
  finished: boolean;
}

export type Listener = (state: StoreState) => void;

const initialState = (): StoreState => ({
  tasks: new Map(),
  tracked: new Set(),
  dismissed: new Set(),
  filters: { taskType: '', status: '' },
  listed: new Set(),
  lowestLoadedId: Number.POSITIVE_INFINITY,
  nextCursor: null,
  listError: null,
});

export function matchesFilters(task: CardTask, filters: Filters): boolean {
  return (!filters.taskType || task.task_type === filters.taskType) && (!filters.status || task.status === filters.status);
}

export class TaskStore {
  private current: StoreState = initialState();
  private readonly listeners = new Set<Listener>();
  private readonly finishListeners = new Set<(task: CardTask) => void>();

  get state(): StoreState {
    return this.current;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Hear each task end (once per task, when this store saw it unfinished before). */
  onFinished(listener: (task: CardTask) => void): () => void {
    this.finishListeners.add(listener);
    return () => this.finishListeners.delete(listener);
  }

  private set(patch: Partial<StoreState>): void {
    this.current = { ...this.current, ...patch };
    for (const listener of this.listeners) listener(this.current);
  }

  /** Snapshots in. `show`: put it on the list even if it is older than the loaded pages. */
  receive(snapshot: CardTask, { show = false }: { show?: boolean } = {}): Received {
    const prev = this.current.tasks.get(snapshot.id);
    const real = prev && !prev.placeholder ? prev : undefined;
    let task = snapshot;
    if (real && (snapshot.placeholder || !isNewerSnapshot(real, snapshot))) task = real;
    const finished = real !== undefined && task !== real && !isTerminal(real) && isTerminal(task);
    const listed = show && !this.current.listed.has(task.id) ? new Set(this.current.listed).add(task.id) : this.current.listed;
    if (task !== prev || listed !== this.current.listed) {
      this.set({ tasks: new Map(this.current.tasks).set(task.id, task), listed });
    }
    if (finished) for (const listener of this.finishListeners) listener(task);
    return { task, finished };
  }

  /** A page of the list arrived. `reset`: it is the first page, so it replaces what was listed. */
  listLoaded(page: TaskPage, { reset }: { reset: boolean }): Received[] {
    const received = page.items.map((task) => this.receive(task));
    const ids = page.items.map((task) => task.id);
    const lowest = Math.min(reset ? Number.POSITIVE_INFINITY : this.current.lowestLoadedId, ...ids);
    this.set({
      listed: new Set([...(reset ? [] : this.current.listed), ...ids]),
      // Without a next page, everything is loaded: any task belongs on the list.
      lowestLoadedId: page.next_cursor ? lowest : Number.NEGATIVE_INFINITY,
      nextCursor: page.next_cursor ?? null,
      listError: null,
    });
    return received;
  }

  listFailed(reason: string): void {
    this.set({ listError: reason });
  }

  /** New filters: the list must be loaded again from its first page. */
  setFilters(filters: Filters): void {
    this.set({ filters, listed: new Set(), lowestLoadedId: Number.POSITIVE_INFINITY, nextCursor: null });
  }

  setTracked(ids: Iterable<number>): void {
    const tracked = new Set(ids);
    const same = tracked.size === this.current.tracked.size && [...tracked].every((id) => this.current.tracked.has(id));
    if (!same) this.set({ tracked });
  }

  setDismissed(ids: Iterable<number>): void {
    this.set({ dismissed: new Set(ids) });
  }

  dismiss(id: number): void {
    this.set({ dismissed: new Set(this.current.dismissed).add(id) });
  }

  /** The task is gone (deleted, or 404): drop everything known about it. */
  forget(id: number): void {
    const tasks = new Map(this.current.tasks);
    tasks.delete(id);
    const listed = new Set(this.current.listed);
    listed.delete(id);
    this.set({ tasks, listed });
  }

  /** Clear everything (sign-out). */
  reset(): void {
    this.set(initialState());
  }

  isTracked(id: number): boolean {
    return this.current.tracked.has(id);
  }

  /** Views out: the cards to show, newest first. */
  visible(): TaskView[] {
    const s = this.current;
    const views: TaskView[] = [];
    for (const task of s.tasks.values()) {
      const tracked = s.tracked.has(task.id);
      if (s.dismissed.has(task.id) || !matchesFilters(task, s.filters)) continue;
      if (!(tracked || s.listed.has(task.id) || task.id >= s.lowestLoadedId)) continue;
      views.push({ task, tracked });
    }
    // Ids grow with creation time: newest first.
    return views.sort((a, b) => b.task.id - a.task.id);
  }

  /** Tracked tasks still running: the ones to follow on their own feed. */
  followed(): CardTask[] {
    const s = this.current;
    return [...s.tracked].flatMap((id) => {
      const task = s.tasks.get(id);
      return task && !isTerminal(task) ? [task] : [];
    });
  }
}

export type { Task };
