// The page's store: snapshots in, views out.
import { describe, expect, it } from 'vitest';
import { TaskStore } from '../src/store';
import { makeTask } from './taskServer';

describe('TaskStore', () => {
  it('keeps the newest snapshot per task; counts never go backwards', () => {
    const store = new TaskStore();
    const v1 = makeTask({ id: 7, processed_items: 10 });
    const v2 = makeTask({ id: 7, processed_items: 20 });
    store.receive(v2);
    const { task } = store.receive(v1); // an older snapshot arriving late (a list page, a poll)
    expect(task).toBe(v2);
    expect(store.state.tasks.get(7)?.processed_items).toBe(20);
  });

  it('a finished task never comes back to life, and its end is heard once', () => {
    const store = new TaskStore();
    const finished: number[] = [];
    store.onFinished((task) => finished.push(task.id));
    const running = makeTask({ id: 8, status: 'running' });
    const done = makeTask({ id: 8, status: 'completed', processed_items: 100 });
    store.receive(running);
    expect(store.receive(done).finished).toBe(true);
    expect(store.receive(done).finished).toBe(false); // the same snapshot from another feed
    // A non-terminal snapshot with a newer version (a misbehaving feed) is still refused.
    const stale = { ...running, version: done.version + 1 };
    expect(store.receive(stale).task).toBe(done);
    expect(finished).toEqual([8]);
  });

  it('a placeholder from localStorage never replaces a real snapshot', () => {
    const store = new TaskStore();
    const real = makeTask({ id: 9, processed_items: 50 });
    store.receive(real);
    const { task } = store.receive({ id: 9, task_type: 'broadcast', status: 'running', placeholder: true });
    expect(task).toBe(real);
  });

  it('shows loaded pages, newer tasks, tracked ones; hides filtered and dismissed', () => {
    const store = new TaskStore();
    const old = makeTask({ id: 3 });
    const page = [makeTask({ id: 20 }), makeTask({ id: 12, task_type: 'receipt_sync' })];
    store.listLoaded({ items: page, next_cursor: 'more' }, { reset: true });
    store.receive(makeTask({ id: 25 })); // newer than the loaded page: a new task, shown
    store.receive(old); // older than the loaded pages: not shown unless tracked
    expect(store.visible().map((v) => v.task.id)).toEqual([25, 20, 12]);

    store.setTracked([3]);
    expect(store.visible().map((v) => [v.task.id, v.tracked])).toEqual([
      [25, false],
      [20, false],
      [12, false],
      [3, true],
    ]);
    store.dismiss(20);
    store.setFilters({ taskType: 'broadcast', status: '' });
    store.listLoaded({ items: [makeTask({ id: 25 })], next_cursor: null }, { reset: true });
    // Everything is loaded now (no next page): any broadcast belongs on the list.
    expect(store.visible().map((v) => v.task.id)).toEqual([25, 3]);
  });

  it('a failed list load shows nothing untracked until a load succeeds', () => {
    const store = new TaskStore();
    store.listFailed('network');
    store.receive(makeTask({ id: 30 }));
    expect(store.visible()).toEqual([]);
    store.receive(makeTask({ id: 31 }), { show: true }); // started here: shown anyway
    expect(store.visible().map((v) => v.task.id)).toEqual([31]);
    store.listLoaded({ items: [], next_cursor: null }, { reset: true });
    expect(store.state.listError).toBeNull();
    expect(store.visible().map((v) => v.task.id)).toEqual([31, 30]);
  });

  it('follows tracked tasks until they end; forgets deleted ones', () => {
    const store = new TaskStore();
    store.receive(makeTask({ id: 40, status: 'running' }));
    store.receive(makeTask({ id: 41, status: 'completed' }));
    store.setTracked([40, 41]);
    expect(store.followed().map((t) => t.id)).toEqual([40]);
    store.forget(40);
    expect(store.followed()).toEqual([]);
    expect(store.state.tasks.has(40)).toBe(false);
  });

  it('tells listeners about every change, and only about changes', () => {
    const store = new TaskStore();
    let calls = 0;
    store.subscribe(() => calls++);
    const task = makeTask({ id: 50 });
    store.receive(task);
    store.receive(task);
    store.setTracked([]);
    expect(calls).toBe(1);
  });
});
