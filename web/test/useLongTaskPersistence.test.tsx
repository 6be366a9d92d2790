// The seed's persistence hook: reloads, expiry on fake timers, tabs, scope.
import { act, renderHook } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { storageKey } from '../src/persistence';
import { useLongTaskPersistence } from '../src/react';

const MINUTE = 60_000;

beforeEach(() => {
  localStorage.clear();
  vi.useFakeTimers({ now: new Date('2026-01-01T12:00:00Z') });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('useLongTaskPersistence', () => {
  it('survives a reload (a new mount reads what the last one saved)', () => {
    const first = renderHook(() => useLongTaskPersistence(1, 'broadcast'));
    act(() => first.result.current.saveTask({ taskId: 5, taskType: 'broadcast', status: 'running' }));
    expect(first.result.current.activeTask?.taskId).toBe(5);
    first.unmount();
    const reloaded = renderHook(() => useLongTaskPersistence(1, 'broadcast'));
    expect(reloaded.result.current.activeTask).toMatchObject({ taskId: 5, status: 'running' });
    reloaded.unmount();
  });

  it('clears a completed task after five minutes and a forgotten one after an hour, without a reload', () => {
    const hook = renderHook(() => useLongTaskPersistence(1, 'broadcast'));
    act(() => {
      hook.result.current.saveTask({ taskId: 1, status: 'running' });
      hook.result.current.saveTask({ taskId: 2, status: 'running' });
    });
    act(() => hook.result.current.saveTask({ taskId: 2, status: 'completed' }));
    act(() => {
      vi.advanceTimersByTime(5 * MINUTE - 1000);
    });
    expect(hook.result.current.tasks.map((t) => t.taskId)).toEqual([2, 1]);
    act(() => {
      vi.advanceTimersByTime(1000);
    });
    expect(hook.result.current.activeTask?.taskId).toBe(1);
    act(() => {
      vi.advanceTimersByTime(55 * MINUTE);
    });
    expect(hook.result.current.activeTask).toBeNull();
    expect(localStorage.getItem(storageKey(1, 'broadcast'))).toBeNull();
    hook.unmount();
  });

  it("two tabs see each other's tasks and do not clobber them", () => {
    const tabA = renderHook(() => useLongTaskPersistence(1, 'broadcast'));
    const tabB = renderHook(() => useLongTaskPersistence(1, 'broadcast'));
    act(() => tabA.result.current.saveTask({ taskId: 10, status: 'running' }));
    act(() => tabB.result.current.saveTask({ taskId: 11, status: 'running' }));
    // Another tab's write reaches this one as a `storage` event.
    act(() => {
      window.dispatchEvent(new StorageEvent('storage', { key: storageKey(1, 'broadcast') }));
    });
    expect(tabA.result.current.tasks.map((t) => t.taskId)).toEqual([11, 10]);
    act(() => tabB.result.current.clearTask(11));
    expect(tabA.result.current.tasks.map((t) => t.taskId)).toEqual([10]);
    expect(tabB.result.current.activeTask?.taskId).toBe(10);
    tabA.unmount();
    tabB.unmount();
  });

  it('is scoped by business and type, and stores nothing but ids and statuses', () => {
    const broadcasts = renderHook(() => useLongTaskPersistence(1, 'broadcast'));
    const otherBusiness = renderHook(() => useLongTaskPersistence(2, 'broadcast'));
    const syncs = renderHook(() => useLongTaskPersistence(1, 'receipt_sync'));
    // A host passing more than it should (the seed's saveTask gets a whole API answer).
    const leaky = { taskId: 30, status: 'running', name: 'VIP customers', recipients: ['+972501234567'] } as const;
    act(() => broadcasts.result.current.saveTask(leaky));
    expect(otherBusiness.result.current.activeTask).toBeNull();
    expect(syncs.result.current.activeTask).toBeNull();
    const raw = localStorage.getItem(storageKey(1, 'broadcast')) ?? '';
    expect(raw).not.toContain('VIP');
    expect(raw).not.toContain('972');
    for (const h of [broadcasts, otherBusiness, syncs]) h.unmount();
  });
});
