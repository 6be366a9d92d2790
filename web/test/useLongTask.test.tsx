// useLongTask against a task API over real HTTP (test/taskServer.ts).
import { act, renderHook, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { Task } from '../src/api/types';
import { useLongTask } from '../src/react';
import { progressSnapshots, TaskServer } from './taskServer';

const TOKEN = 'header.payload.signature';
// How long to wait for what the hook will show, not a speed claim: a stream now takes a ticket
// round trip first, and a loaded machine stretches every step (Testing Library waits 1 s).
const UNTIL = { timeout: 15_000 };
let server: TaskServer | null = null;

afterEach(async () => {
  await server?.stop();
  server = null;
});

/** Renders the hook and records every task it showed, in order. */
function follow(taskId: number, url: string, pollIntervalMs = 20) {
  const seen: Task[] = [];
  const completions: Task[] = [];
  const hook = renderHook(() => {
    const result = useLongTask(taskId, {
      baseUrl: url,
      token: TOKEN,
      pollIntervalMs,
      onComplete: (task) => completions.push(task),
    });
    if (result.task && seen.at(-1) !== result.task) seen.push(result.task);
    return result;
  });
  return { hook, seen, completions };
}

function expectMonotonic(seen: Task[]): void {
  const versions = seen.map((t) => t.version);
  const processed = seen.map((t) => t.processed_items);
  // Strictly newer each time (nothing repeated), and counts never go backwards.
  expect(versions).toEqual([...new Set(versions)].sort((a, b) => a - b));
  expect(processed).toEqual([...processed].sort((a, b) => a - b));
}

/** Nothing is requested for a while after the end: many of the server's 20 ms retry periods. */
async function quietAfterwards(s: TaskServer): Promise<void> {
  const before = s.requests.length;
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(s.requests.slice(before)).toEqual([]);
}

describe('useLongTask', () => {
  it('resumes a dropped stream with Last-Event-ID; counts never go backwards or repeat', async () => {
    const snapshots = progressSnapshots(41, 500, 6);
    const dropAfter = 3;
    server = await new TaskServer({ snapshots, dropAfter, replayOnReconnect: snapshots[1]?.version }).start();
    const { hook, seen, completions } = follow(41, server.url);

    await waitFor(() => expect(hook.result.current.task?.status).toBe('completed'), UNTIL);
    const streams = server.requestsTo('/api/long_tasks/41/events');
    expect(streams).toHaveLength(2);
    expect(streams[0]?.lastEventId).toBeNull();
    // The second connection resumed after the last event the first one delivered.
    expect(streams[1]?.lastEventId).toBe(String(snapshots[dropAfter - 1]?.version));
    // The stream carries a ticket minted for its path (the browser cannot send a header),
    // never the token; the browser's own reconnect reuses it.
    const minted = server.minted;
    expect(minted).toEqual([{ path: '/api/long_tasks/41/events', ticket: streams[0]?.ticket }]);
    expect(streams.every((r) => r.ticket === minted[0]?.ticket && r.accessToken === null)).toBe(true);

    expectMonotonic(seen);
    // React may batch snapshots that arrive together into one render; what it shows is always
    // one of the server's snapshots, the terminal one last.
    expect(seen.every((t) => snapshots.some((s) => s.version === t.version && s.processed_items === t.processed_items))).toBe(true);
    expect(seen.at(-1)).toEqual(snapshots.at(-1));
    expect(completions).toEqual([snapshots.at(-1)]);
    // No poll was needed, and nothing follows the terminal snapshot.
    expect(server.requestsTo('/api/long_tasks/41')).toEqual([]);
    await quietAfterwards(server);
    expect(completions).toHaveLength(1);
    expect(hook.result.current.error).toBeNull();
    hook.unmount();
  });

  it('opens the stream again with a fresh ticket when its reconnect carried an expired one', async () => {
    const snapshots = progressSnapshots(45, 300, 5);
    const dropAfter = 2;
    server = await new TaskServer({ snapshots, dropAfter, expireTicketsOnDrop: true }).start();
    const { hook, seen, completions } = follow(45, server.url);

    await waitFor(() => expect(hook.result.current.task?.status).toBe('completed'), UNTIL);
    const [first, second] = server.minted.map((m) => m.ticket);
    expect(server.minted).toHaveLength(2);
    // The browser's reconnect resumes after the last event with the ticket it had, expired
    // meanwhile: refused. The feed mints another and opens a new stream (a new EventSource, so
    // no Last-Event-ID: the server sends from the current snapshot).
    expect(server.requestsTo('/api/long_tasks/45/events').map((r) => [r.ticket, r.lastEventId, r.status])).toEqual([
      [first, null, 200],
      [first, String(snapshots[dropAfter - 1]?.version), 401],
      [second, null, 200],
    ]);
    expect(server.requests.every((r) => r.accessToken === null)).toBe(true);
    // Not polled: the stream was back at once.
    expect(server.requestsTo('/api/long_tasks/45')).toEqual([]);
    expectMonotonic(seen);
    expect(seen.at(-1)).toEqual(snapshots.at(-1));
    expect(completions).toEqual([snapshots.at(-1)]);
    await quietAfterwards(server);
    expect(hook.result.current.error).toBeNull();
    hook.unmount();
  });

  it('polls when the stream is refused, until the terminal snapshot, then stops', async () => {
    const snapshots = progressSnapshots(42, 90, 4, 'failed');
    server = await new TaskServer({ snapshots, refuseStream: 503 }).start();
    const { hook, seen, completions } = follow(42, server.url);

    await waitFor(() => expect(hook.result.current.task?.status).toBe('failed'), UNTIL);
    expect(server.requestsTo('/api/long_tasks/42/events')).toHaveLength(1);
    const polls = server.requestsTo('/api/long_tasks/42');
    expect(polls).toHaveLength(snapshots.length);
    // REST calls carry the token as a header, never in the URL.
    expect(polls.every((r) => r.authorization === `Bearer ${TOKEN}` && r.accessToken === null)).toBe(true);
    expectMonotonic(seen);
    expect(completions).toEqual([snapshots.at(-1)]);
    await quietAfterwards(server);
    hook.unmount();
  });

  it('cancel posts to the API and shows the answer', async () => {
    // A long task: the stream stays open on its first snapshots while we cancel.
    const snapshots = progressSnapshots(43, 1000, 2).slice(0, 2);
    server = await new TaskServer({ snapshots }).start();
    const { hook } = follow(43, server.url);
    await waitFor(() => expect(hook.result.current.task).not.toBeNull(), UNTIL);

    let answer: Task | undefined;
    await act(async () => {
      answer = await hook.result.current.cancel();
    });
    expect(server.cancelled).toBe(true);
    expect(answer?.cancel_requested).toBe(true);
    expect(hook.result.current.task?.cancel_requested).toBe(true);
    expect(server.requestsTo('/api/long_tasks/43/cancel')[0]?.authorization).toBe(`Bearer ${TOKEN}`);
    hook.unmount();
  });

  it('reports an error the poll cannot get past, and stops', async () => {
    server = await new TaskServer({ snapshots: progressSnapshots(44, 10, 1), refuseStream: 404 }).start();
    // Ask for a task this server does not know: the poll answers 404.
    const hook = renderHook(() => useLongTask(999, { baseUrl: server?.url ?? '', token: TOKEN, pollIntervalMs: 20 }));
    await waitFor(() => expect(hook.result.current.error).not.toBeNull(), UNTIL);
    expect(hook.result.current.task).toBeNull();
    // No ticket for a task the server does not know (404), so no stream: one poll, its 404.
    expect(server.requestsTo('/api/tickets').map((r) => r.status)).toEqual([404]);
    expect(server.requestsTo('/api/long_tasks/999/events')).toEqual([]);
    expect(server.requestsTo('/api/long_tasks/999')).toHaveLength(1);
    await quietAfterwards(server);
    hook.unmount();
  });
});
