import type net from 'node:net';

export interface AdmissionLimits {
  maxConnections: number;
  maxConnectionsPerIp: number;
}

/**
 * Connection limits enforced on the main thread before a connection reaches any worker. Free when
 * no limit is set: nothing is counted then.
 */
export class Admission {
  #maxConnections: number;
  readonly #maxPerIp: number;
  readonly #perIp = new Map<string, number>();
  #open = 0;

  constructor(limits: AdmissionLimits) {
    this.#maxConnections = limits.maxConnections;
    this.#maxPerIp = limits.maxConnectionsPerIp;
  }

  /**
   * Sets maxConnections where the user left it unlimited, counting in the `alreadyOpen` connections
   * accepted while no limit applied.
   */
  defaultMaxConnections(limit: number, alreadyOpen: number): void {
    if (this.#maxConnections !== 0) return;
    if (!this.enabled) this.#open = alreadyOpen;
    this.#maxConnections = limit;
  }

  get maxConnections(): number {
    return this.#maxConnections;
  }

  get enabled(): boolean {
    return this.#maxConnections > 0 || this.#maxPerIp > 0;
  }

  /** Whether workers must say which client address each closed connection had. */
  get tracksAddresses(): boolean {
    return this.#maxPerIp > 0;
  }

  /** Counts the connection in, or returns the limit it would break. */
  admit(socket: net.Socket): 'maxConnections' | 'maxConnectionsPerIp' | undefined {
    if (this.#maxConnections > 0 && this.#open >= this.#maxConnections) return 'maxConnections';
    if (this.#maxPerIp > 0) {
      const address = socket.remoteAddress ?? '';
      const count = this.#perIp.get(address) ?? 0;
      if (count >= this.#maxPerIp) return 'maxConnectionsPerIp';
      this.#perIp.set(address, count + 1);
    }
    this.#open++;
    return undefined;
  }

  /** Counts connections out once they have closed, wherever that happened. */
  release(count: number, addresses?: readonly string[]): void {
    this.#open = Math.max(0, this.#open - count);
    if (!addresses) return;
    for (const address of addresses) {
      const remaining = (this.#perIp.get(address) ?? 1) - 1;
      if (remaining > 0) this.#perIp.set(address, remaining);
      else this.#perIp.delete(address);
    }
  }
}
