// Live updates: Server-Sent Events first, polling when the stream keeps failing.
//
// EventSource reconnects by itself and sends `Last-Event-ID`, so the server resumes where the
// stream dropped; a single error is normal and the feed only says "connecting" meanwhile.
// Several errors in a short window mean something between us and the API (a proxy buffering or
// cutting streams, a server without SSE) is broken, and polling is the dependable fallback.
// The server ends a task's stream after its terminal snapshot; the feed closes first, on seeing
// a terminal status, so the browser does not reconnect and nothing is requested after it.
// A stream's URL carries a ticket good for about a minute: each opening mints a fresh one, and
// a stream that had been open and whose own reconnect is refused (its ticket expired meanwhile)
// is opened again with a fresh ticket rather than given up for polling.

const ERROR_BURST = 3; // this many errors...
const ERROR_WINDOW_MS = 10_000; // ...within this window switch to polling
export const TASK_POLL_MS = 2_500; // the seed's refresh interval
export const LIST_POLL_MS = 5_000;
const STREAM_RETRY_MS = 60_000; // while polling, try the stream again this often

export type FeedMode = 'connecting' | 'stream' | 'polling' | 'stopped';

export interface LiveFeedOptions<T> {
  /** The EventSource URL (built by the API client: it carries a fresh ticket, so it may take
   * a round trip). A rejection counts as a stream failure: the feed polls. */
  streamUrl: () => string | Promise<string>;
  /** Fetch the current state once; `undefined` when the poll delivered through other means. */
  poll: () => Promise<T | undefined>;
  /** Each parsed event or poll result. */
  onData: (data: T) => void;
  /** True once nothing more will change: the feed stops everything. */
  isDone?: (data: T | undefined) => boolean;
  /** Return true to stop (a 404: the task was deleted; a 401/403). */
  onPollError?: (err: unknown) => boolean;
  onMode?: (mode: FeedMode) => void;
  pollMs?: number;
  /** False: poll only (e.g. too many streams open to this origin already). */
  streamAllowed?: boolean;
}

export class LiveFeed<T = unknown> {
  mode: FeedMode = 'stopped';
  private readonly opts: Required<LiveFeedOptions<T>>;
  private es: EventSource | null = null;
  private errors: number[] = [];
  private pollTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private stopped = true;
  private pollGeneration = 0;
  /** The current stream has been open (its `open` event came). */
  private opened = false;

  constructor(opts: LiveFeedOptions<T>) {
    this.opts = {
      pollMs: TASK_POLL_MS,
      isDone: () => false,
      onPollError: () => false,
      onMode: () => {},
      streamAllowed: true,
      ...opts,
    };
  }

  private get canStream(): boolean {
    return this.opts.streamAllowed && typeof globalThis.EventSource === 'function';
  }

  start(): this {
    if (!this.stopped) return this;
    this.stopped = false;
    if (this.canStream) this.openStream();
    else this.startPolling();
    return this;
  }

  stop(): void {
    this.stopped = true;
    this.closeStream();
    clearTimeout(this.pollTimer);
    clearTimeout(this.retryTimer);
    this.pollTimer = this.retryTimer = undefined;
    this.pollGeneration++;
    this.setMode('stopped');
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  private setMode(mode: FeedMode): void {
    if (this.mode === mode) return;
    this.mode = mode;
    this.opts.onMode(mode);
  }

  private openStream(): void {
    this.errors = [];
    void this.connect();
  }

  private async connect(): Promise<void> {
    // Not 'stream' until the server answers: the page must not claim to be live while it is not.
    this.setMode('connecting');
    // A stop, or polling started meanwhile, wins over a URL that arrives late.
    const generation = ++this.pollGeneration;
    const current = () => !this.stopped && this.pollGeneration === generation;
    let url: string;
    try {
      url = await this.opts.streamUrl();
    } catch {
      if (current()) this.startPolling();
      return;
    }
    if (!current()) return;
    const es = new EventSource(url);
    this.es = es;
    this.opened = false;
    const handle = (ev: MessageEvent<string>) => this.onEvent(ev);
    // The server names its events `task`; take the default `message` type too.
    es.addEventListener('message', handle);
    es.addEventListener('task', handle as EventListener);
    es.addEventListener('open', () => {
      if (this.es !== es) return;
      this.opened = true;
      this.setMode('stream');
    });
    es.addEventListener('error', () => this.onStreamError(es));
  }

  private closeStream(): void {
    this.es?.close();
    this.es = null;
  }

  private onEvent(ev: MessageEvent<string>): void {
    if (this.stopped || !ev.data) return;
    let data: T;
    try {
      data = JSON.parse(ev.data) as T;
    } catch {
      return; // not a snapshot: nothing to show
    }
    this.opts.onData(data);
    if (this.opts.isDone(data)) this.stop();
  }

  private onStreamError(es: EventSource): void {
    if (this.stopped || this.es !== es) return;
    const now = Date.now();
    this.errors = this.errors.filter((at) => now - at < ERROR_WINDOW_MS);
    this.errors.push(now);
    // CLOSED: the browser gave up (a non-200 answer such as 401/404, or a wrong content type)
    // and will not retry. A stream that had been open most likely reconnected with a ticket
    // that has expired since: open it again with a fresh one. Otherwise, or when errors keep
    // coming, poll: polling surfaces the real HTTP error.
    const closed = es.readyState === EventSource.CLOSED;
    if (closed && this.opened && this.errors.length < ERROR_BURST) {
      this.closeStream();
      void this.connect();
      return;
    }
    if (closed || this.errors.length >= ERROR_BURST) {
      this.closeStream();
      this.startPolling();
      return;
    }
    // The browser is reconnecting by itself; 'open' sets 'stream' again once it has.
    this.setMode('connecting');
  }

  private startPolling(): void {
    this.setMode('polling');
    // A poll still in flight when the stream is retried must not schedule another poll.
    const generation = ++this.pollGeneration;
    const current = () => !this.stopped && this.pollGeneration === generation;
    const tick = async () => {
      if (!current()) return;
      try {
        const data = await this.opts.poll();
        if (!current()) return;
        if (data !== undefined) this.opts.onData(data);
        if (this.opts.isDone(data)) {
          this.stop();
          return;
        }
      } catch (err) {
        if (!current()) return;
        if (this.opts.onPollError(err)) {
          this.stop();
          return;
        }
      }
      // A timeout after each answer, not an interval: a slow API never gets overlapping polls.
      this.pollTimer = setTimeout(() => void tick(), this.opts.pollMs);
    };
    void tick();
    if (this.canStream) {
      // The outage that forced polling may be over: give the stream another chance later.
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => {
        if (this.stopped) return;
        clearTimeout(this.pollTimer);
        this.openStream(); // a new generation: the polling loop stops
      }, STREAM_RETRY_MS);
    }
  }
}
