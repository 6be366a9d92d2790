// jsdom has no EventSource; Node 20 neither. The `eventsource` package is a WHATWG-conformant
// implementation (reconnects by itself with Last-Event-ID, honours `retry:`), standing in for
// the browser's at the network edge. Everything above it is the package's own code.
import { EventSource } from 'eventsource';

globalThis.EventSource = EventSource;
