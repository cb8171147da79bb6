import { HEARTBEAT_BYTES, HEARTBEAT_REQUESTS, HEARTBEAT_TURN, heartbeatClock } from '../protocol/messages.ts';

/**
 * The main thread's side of a worker's heartbeat (see lib/protocol/messages.ts): how long ago the
 * worker last showed life, read without asking it, so that a stuck worker is seen too. Life is its
 * timers running, a request begun, or its event loop waiting for I/O: the idle time of the loop,
 * which the main thread reads, grows only while it waits, and a loop that waits has turned.
 */
export class Heartbeat {
  readonly buffer = new SharedArrayBuffer(HEARTBEAT_BYTES);
  readonly #cells = new Int32Array(this.buffer);
  #requests = 0;
  #idleTime = 0;
  /** When the request count or the idle time was last seen to move, on the heartbeat's clock. */
  #movedAt: number;

  constructor() {
    const now = heartbeatClock();
    Atomics.store(this.#cells, HEARTBEAT_TURN, now);
    this.#movedAt = now;
  }

  /** Milliseconds since the worker last showed life, given its event loop's idle time so far, if known. */
  ageMs(idleTime = this.#idleTime): number {
    const now = heartbeatClock();
    const requests = Atomics.load(this.#cells, HEARTBEAT_REQUESTS);
    if (requests !== this.#requests || idleTime !== this.#idleTime) {
      this.#requests = requests;
      this.#idleTime = idleTime;
      this.#movedAt = now;
    }
    const sinceTurn = (now - Atomics.load(this.#cells, HEARTBEAT_TURN)) | 0;
    // The worker may write between the two readings of the clock: a beat "in the future" is now.
    return Math.max(0, Math.min(sinceTurn, (now - this.#movedAt) | 0));
  }
}
