// A task API over real HTTP for the hook's tests: the routes the hook uses, speaking like the
// service (`id: <version>` events, `retry:`, the stream resumes after Last-Event-ID and ends
// after the terminal snapshot; a stream opens with a ticket minted for its path by POST
// /api/tickets, never with `?access_token=`), plus faults the tests script: drop the stream
// after N events, expire the tickets when it drops, refuse the stream, replay an old snapshot
// on reconnect (harder than the service, which only sends newer ones). It records every
// request and what it answered.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Task } from '../src/api/types';

export interface RecordedRequest {
  method: string;
  path: string;
  lastEventId: string | null;
  authorization: string | null;
  accessToken: string | null;
  ticket: string | null;
  /** What the server answered (200 for a stream it served; 0 before it answered). */
  readonly status: number;
}

export interface TaskServerScript {
  /** The task's snapshots in order; the last is normally terminal. */
  snapshots: Task[];
  /** Close the first stream after this many events (undefined: never). */
  dropAfter?: number;
  /** On a reconnect, first send this (older or repeated) version again. */
  replayOnReconnect?: number;
  /** Answer the stream with this HTTP status instead (e.g. 503): clients must poll. */
  refuseStream?: number;
  /** When the first stream drops, every ticket minted so far expires (their minute passed). */
  expireTicketsOnDrop?: boolean;
}

export class TaskServer {
  readonly requests: RecordedRequest[] = [];
  private server: Server | null = null;
  private streams = 0;
  /** Which snapshot GET /api/long_tasks/{id} answers (polls move it forward). */
  private polled = 0;
  private tickets = 0;
  /** Every ticket minted, with the path it was asked for. */
  readonly minted: { path: string; ticket: string }[] = [];
  private readonly expired = new Set<string>();
  cancelled = false;

  constructor(private readonly script: TaskServerScript) {}

  get url(): string {
    const address = this.server?.address() as AddressInfo;
    return `http://127.0.0.1:${address.port}`;
  }

  get taskId(): number {
    const first = this.script.snapshots[0];
    if (!first) throw new Error('no snapshots');
    return first.id;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  requestsTo(path: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const header = (name: string) => {
      const value = req.headers[name];
      return typeof value === 'string' ? value : null;
    };
    this.requests.push({
      method: req.method ?? 'GET',
      path: url.pathname,
      lastEventId: header('last-event-id'),
      authorization: header('authorization'),
      accessToken: url.searchParams.get('access_token'),
      ticket: url.searchParams.get('ticket'),
      get status() {
        return res.headersSent ? res.statusCode : 0;
      },
    });
    if (url.pathname === '/api/tickets' && req.method === 'POST') {
      // Like the service: a ticket for the path in the body, minted for a bearer token only.
      if (!header('authorization')?.startsWith('Bearer ')) {
        this.json(res, 401, { detail: 'not authenticated' });
        return;
      }
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const { path } = JSON.parse(body) as { path: string };
        const task = /^\/api\/long_tasks\/(\d+)\/events$/.exec(path);
        if (task && Number(task[1]) !== this.taskId) {
          this.json(res, 404, { detail: 'Not Found' }); // another business's task, or none
          return;
        }
        const ticket = `t1.test-${++this.tickets}`;
        this.minted.push({ path, ticket });
        this.json(res, 201, { ticket, url: `${path}?ticket=${ticket}`, expires_at: new Date(Date.now() + 60_000).toISOString() });
      });
      return;
    }
    const base = `/api/long_tasks/${this.taskId}`;
    if (url.pathname === `${base}/events`) {
      // Like the service: a token in the URL is refused; a ticket opens its own path, until
      // it expires.
      const ticket = url.searchParams.get('ticket');
      const valid = this.minted.some((m) => m.ticket === ticket && m.path === url.pathname) && !this.expired.has(ticket ?? '');
      if (url.searchParams.has('access_token') || !valid) {
        this.json(res, 401, { detail: 'not authenticated' });
        return;
      }
      this.stream(req, res);
      return;
    }
    if (url.pathname === base && req.method === 'GET') {
      const snapshots = this.script.snapshots;
      const task = snapshots[Math.min(this.polled++, snapshots.length - 1)];
      this.json(res, 200, task);
      return;
    }
    if (url.pathname === `${base}/cancel` && req.method === 'POST') {
      this.cancelled = true;
      const current = this.script.snapshots[Math.max(0, this.polled - 1)];
      this.json(res, 202, { task: { ...current, cancel_requested: true, version: (current?.version ?? 0) + 1000 } });
      return;
    }
    this.json(res, 404, { detail: 'Not Found' });
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private stream(req: IncomingMessage, res: ServerResponse): void {
    if (this.script.refuseStream) {
      this.json(res, this.script.refuseStream, { detail: 'stream unavailable' });
      return;
    }
    const connection = this.streams++;
    const lastHeader = req.headers['last-event-id'];
    const last = typeof lastHeader === 'string' && /^\d+$/.test(lastHeader) ? Number(lastHeader) : 0;
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    res.write('retry: 20\n\n');
    const send = (task: Task) => res.write(`id: ${task.version}\nevent: task\ndata: ${JSON.stringify(task)}\n\n`);
    const pending = this.script.snapshots.filter((task) => task.version > last);
    if (connection > 0 && this.script.replayOnReconnect !== undefined) {
      const replay = this.script.snapshots.find((task) => task.version === this.script.replayOnReconnect);
      if (replay) send(replay);
    }
    let sent = 0;
    for (const task of pending) {
      if (connection === 0 && this.script.dropAfter !== undefined && sent === this.script.dropAfter) {
        // Cut the connection mid-task (once what was written reached the client), as a proxy
        // or a restarting server would: no end of stream, just a dead socket.
        if (this.script.expireTicketsOnDrop) for (const m of this.minted) this.expired.add(m.ticket);
        res.write(': bye\n\n', () => res.socket?.destroy());
        return;
      }
      send(task);
      sent++;
    }
    // Like the service: the stream ends after the terminal snapshot.
    res.end();
  }
}

let version = 0;

/** A broadcast's snapshots: `steps` of progress towards `total`, then the terminal one. */
export function progressSnapshots(id: number, total: number, steps: number, terminal: Task['status'] = 'completed'): Task[] {
  const snapshots: Task[] = [];
  for (let i = 0; i <= steps; i++) {
    const processed = Math.round((total * i) / steps);
    const done = i === steps;
    snapshots.push(makeTask({ id, processed_items: processed, success_count: processed, total_items: total, status: done ? terminal : 'running' }));
  }
  return snapshots;
}

export function makeTask(fields: Partial<Task> & { id: number }): Task {
  version += 1;
  const now = new Date(Date.UTC(2026, 0, 1, 12, 0, version)).toISOString();
  const total = fields.total_items ?? 100;
  const processed = fields.processed_items ?? 0;
  return {
    business_id: 1,
    task_type: 'broadcast',
    status: 'running',
    total_items: total,
    processed_items: processed,
    success_count: processed,
    failed_count: 0,
    skipped_count: 0,
    cancelled_count: 0,
    progress_pct: total ? (100 * processed) / total : 0,
    cancel_requested: false,
    cancel_reason: null,
    error_message: null,
    status_reason: null,
    workflow_id: `longtask-${fields.id}`,
    priority: 'normal',
    start_at: null,
    version,
    created_at: now,
    updated_at: now,
    started_at: now,
    completed_at: null,
    approval_expires_at: null,
    approved_at: null,
    approved_by: null,
    rejected_by: null,
    created_by: null,
    child_task_ids: [],
    parent_task_id: null,
    eta_seconds: null,
    pause_requested: false,
    paused_at: null,
    paused_by: null,
    ...fields,
  };
}
