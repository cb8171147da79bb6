import type net from 'node:net';

export interface QueueEvents {
  /** The connection waited too long and left the queue. */
  expired(socket: net.Socket): void;
  /** The client closed the connection while it waited. */
  abandoned(socket: net.Socket): void;
}

interface Waiting {
  timer: NodeJS.Timeout;
  onClose: () => void;
}

/**
 * Connections waiting for a worker, oldest first. Bounded in length and in how long each may wait;
 * a connection that overstays, or that closes while waiting, leaves the queue.
 */
export class ConnectionQueue {
  readonly #waiting = new Map<net.Socket, Waiting>();
  readonly #limit: number;
  readonly #timeout: number;
  readonly #events: QueueEvents;

  constructor(limit: number, timeout: number, events: QueueEvents) {
    this.#limit = limit;
    this.#timeout = timeout;
    this.#events = events;
  }

  get limit(): number {
    return this.#limit;
  }

  get length(): number {
    return this.#waiting.size;
  }

  /** False when the queue is full. */
  push(socket: net.Socket): boolean {
    if (this.#waiting.size >= this.#limit) return false;
    const timer = setTimeout(() => {
      this.#remove(socket);
      this.#events.expired(socket);
    }, this.#timeout).unref();
    const onClose = (): void => {
      this.#remove(socket);
      this.#events.abandoned(socket);
    };
    socket.once('close', onClose);
    this.#waiting.set(socket, { timer, onClose });
    return true;
  }

  /**
   * Hands each connection waiting now to `each`, oldest first. One that `each` queues again waits
   * for the next call, so that a worker refusing every connection cannot keep this loop going.
   */
  takeAll(each: (socket: net.Socket) => void): void {
    for (const socket of [...this.#waiting.keys()]) {
      if (!this.#waiting.has(socket)) continue;
      this.#remove(socket);
      each(socket);
    }
  }

  #remove(socket: net.Socket): void {
    const waiting = this.#waiting.get(socket);
    if (!waiting) return;
    clearTimeout(waiting.timer);
    socket.off('close', waiting.onClose);
    this.#waiting.delete(socket);
  }
}
