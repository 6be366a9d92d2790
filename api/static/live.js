// Live task updates: Server-Sent Events first, polling when the stream keeps failing.
//
// EventSource reconnects by itself (sending Last-Event-ID so the server resumes), so a single
// error is normal. Several errors in a short window mean something between us and the API
// (a proxy buffering or cutting streams, a server without SSE) is broken, and polling is the
// dependable fallback. The server ends a task's stream after its terminal snapshot; we close
// first, on seeing a terminal status, so the browser does not try to reconnect.

const ERROR_BURST = 3; // this many errors...
const ERROR_WINDOW_MS = 10_000; // ...within this window switch to polling
export const TASK_POLL_MS = 2_500; // the seed's refresh interval
export const LIST_POLL_MS = 5_000;
const STREAM_RETRY_MS = 60_000; // while polling, try the stream again this often

/**
 * One live feed. The caller provides how to stream and how to poll:
 * @param {object} opts
 * @param {() => string} opts.streamUrl     EventSource URL (with access_token)
 * @param {() => Promise<any>} opts.poll    fetch the current state once (returns data to onData, or undefined)
 * @param {(data: any) => void} opts.onData called with each parsed event or poll result
 * @param {(data: any) => boolean} [opts.isDone] true once nothing more will change: stop everything
 * @param {(err: any) => boolean} [opts.onPollError] return true to stop (e.g. 404: task deleted)
 * @param {(mode: 'stream'|'polling'|'stopped') => void} [opts.onMode]
 * @param {number} [opts.pollMs]
 * @param {boolean} [opts.streamAllowed] false: poll only (e.g. too many open streams)
 */
export class LiveFeed {
  constructor(opts) {
    this.opts = { pollMs: TASK_POLL_MS, isDone: () => false, onPollError: () => false, onMode: () => {}, streamAllowed: true, ...opts };
    this.es = null;
    this.errors = [];
    this.pollTimer = null;
    this.retryTimer = null;
    this.mode = 'stopped';
    this.stopped = true;
    this.pollGeneration = 0;
  }

  start() {
    if (!this.stopped) return this;
    this.stopped = false;
    if (this.opts.streamAllowed && typeof EventSource === 'function') this.#openStream();
    else this.#startPolling();
    return this;
  }

  stop() {
    this.stopped = true;
    this.#closeStream();
    clearTimeout(this.pollTimer);
    clearTimeout(this.retryTimer);
    this.pollTimer = this.retryTimer = null;
    this.pollGeneration++;
    this.#setMode('stopped');
  }

  #setMode(mode) {
    if (this.mode === mode) return;
    this.mode = mode;
    this.opts.onMode(mode);
  }

  #openStream() {
    this.errors = [];
    const es = new EventSource(this.opts.streamUrl());
    this.es = es;
    const handle = (ev) => this.#onEvent(ev);
    // The server may name its events `task` or leave the default `message` type: take both.
    es.addEventListener('message', handle);
    es.addEventListener('task', handle);
    es.addEventListener('open', () => {
      if (this.es === es) this.#setMode('stream');
    });
    es.addEventListener('error', () => this.#onStreamError(es));
    // Not 'stream' until the server answers: the page must not claim to be live while it is not.
    this.#setMode('connecting');
  }

  #closeStream() {
    if (this.es) {
      this.es.close();
      this.es = null;
    }
  }

  #onEvent(ev) {
    if (this.stopped || !ev.data) return;
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch {
      return; // keep-alive or a non-JSON line: nothing to show
    }
    this.opts.onData(data);
    if (this.opts.isDone(data)) this.stop();
  }

  #onStreamError(es) {
    if (this.stopped || this.es !== es) return;
    const now = Date.now();
    this.errors = this.errors.filter((t) => now - t < ERROR_WINDOW_MS);
    this.errors.push(now);
    // CLOSED means the browser gave up (a non-200 answer such as 401/404, or a wrong content
    // type): it will not retry, so neither do we. Polling will surface the real HTTP error.
    if (es.readyState === EventSource.CLOSED || this.errors.length >= ERROR_BURST) {
      this.#closeStream();
      this.#startPolling();
      return;
    }
    // The browser is reconnecting by itself; 'open' sets 'stream' again once it has.
    this.#setMode('connecting');
  }

  #startPolling() {
    this.#setMode('polling');
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
      // setTimeout after each answer (not setInterval): a slow API never gets overlapping polls.
      this.pollTimer = setTimeout(tick, this.opts.pollMs);
    };
    tick();
    if (this.opts.streamAllowed && typeof EventSource === 'function') {
      // The outage that forced polling may be over: give the stream another chance later.
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => {
        if (this.stopped) return;
        clearTimeout(this.pollTimer);
        this.pollGeneration++;
        this.#openStream();
      }, STREAM_RETRY_MS);
    }
  }
}
