// Tracked tasks in localStorage: lifetimes on fake timers, tabs, and what is stored.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createTaskPersistence, ENTRY_TTL_MS, storageKey, TERMINAL_TTL_MS } from '../src/persistence';

const MINUTE = 60_000;

beforeEach(() => {
  localStorage.clear();
  vi.useFakeTimers({ now: new Date('2026-01-01T12:00:00Z') });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('createTaskPersistence', () => {
  it('an entry expires after an hour without a refresh', () => {
    const p = createTaskPersistence(1, 'broadcast');
    p.save(5, 'running');
    vi.advanceTimersByTime(ENTRY_TTL_MS - MINUTE);
    expect(p.has(5)).toBe(true);
    vi.advanceTimersByTime(MINUTE);
    expect(p.has(5)).toBe(false);
    expect(localStorage.getItem(storageKey(1, 'broadcast'))).toBeNull();
  });

  it('a finished entry is cleared five minutes after it finished; re-saving does not restart it', () => {
    const p = createTaskPersistence(1, 'broadcast');
    p.save(6, 'running');
    vi.advanceTimersByTime(30 * MINUTE);
    p.save(6, 'completed');
    vi.advanceTimersByTime(4 * MINUTE);
    p.save(6, 'completed'); // the same terminal snapshot from another feed
    expect(p.has(6)).toBe(true);
    vi.advanceTimersByTime(MINUTE);
    expect(p.has(6)).toBe(false);
    expect(p.nextExpiry()).toBeNull();
  });

  it('refresh updates a tracked entry but never brings back an expired one', () => {
    const p = createTaskPersistence(1, 'broadcast');
    p.save(7, 'running');
    p.refresh(7, 'completed');
    expect(p.list().map((e) => e.status)).toEqual(['completed']);
    vi.advanceTimersByTime(TERMINAL_TTL_MS);
    p.refresh(7, 'completed');
    expect(p.has(7)).toBe(false);
  });

  it('two tabs tracking different tasks do not clobber each other', () => {
    // Each tab has its own persistence object over the origin's one localStorage.
    const tabA = createTaskPersistence(1, 'broadcast');
    const tabB = createTaskPersistence(1, 'broadcast');
    tabA.save(10, 'running');
    tabB.save(11, 'running');
    tabA.save(10, 'completed');
    expect(tabB.list().map((e) => [e.taskId, e.status])).toEqual([
      [11, 'running'],
      [10, 'completed'],
    ]);
    tabB.clear(11);
    expect(tabA.list().map((e) => e.taskId)).toEqual([10]);
  });

  it('is scoped by business and type, and stores ids and statuses only', () => {
    createTaskPersistence(1, 'broadcast').save(20, 'running');
    createTaskPersistence(2, 'broadcast').save(21, 'running');
    createTaskPersistence(1, 'receipt_sync').save(22, 'running');
    expect(createTaskPersistence(1, 'broadcast').list().map((e) => e.taskId)).toEqual([20]);
    const stored = JSON.parse(localStorage.getItem(storageKey(1, 'broadcast')) ?? '[]') as object[];
    expect(stored.map((e) => Object.keys(e).sort())).toEqual([['savedAt', 'status', 'taskId', 'taskType']]);
  });

  it('drops a corrupt value instead of failing every later load', () => {
    localStorage.setItem(storageKey(1, 'broadcast'), '{not json');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const p = createTaskPersistence(1, 'broadcast');
    expect(p.list()).toEqual([]);
    expect(localStorage.getItem(storageKey(1, 'broadcast'))).toBeNull();
    p.save(30, 'running');
    expect(p.has(30)).toBe(true);
    warn.mockRestore();
  });
});
