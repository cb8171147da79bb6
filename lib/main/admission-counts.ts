export type LimitName = 'maxConnections' | 'maxConnectionsPerIp';

export interface AdmissionLimits {
  maxConnections: number;
  maxConnectionsPerIp: number;
}

/**
 * The counts limits are checked against: open connections in all and per peer. Kept here on the main
 * thread, or in shared memory where workers admit connections themselves (the reuseport transport).
 * A peer '' is counted only in the total.
 */
export interface AdmissionCounts {
  readonly open: number;
  openFrom(peer: string): number;
  /** Counts a new connection in, or returns the limit it would break. */
  admit(peer: string, limits: AdmissionLimits): LimitName | undefined;
  release(peer: string): void;
}

export class LocalCounts implements AdmissionCounts {
  readonly #perPeer = new Map<string, number>();
  #open = 0;

  get open(): number {
    return this.#open;
  }

  openFrom(peer: string): number {
    return this.#perPeer.get(peer) ?? 0;
  }

  admit(peer: string, limits: AdmissionLimits): LimitName | undefined {
    if (limits.maxConnections > 0 && this.#open >= limits.maxConnections) return 'maxConnections';
    if (limits.maxConnectionsPerIp > 0 && peer !== '') {
      const count = this.#perPeer.get(peer) ?? 0;
      if (count >= limits.maxConnectionsPerIp) return 'maxConnectionsPerIp';
      this.#perPeer.set(peer, count + 1);
    }
    this.#open++;
    return undefined;
  }

  release(peer: string): void {
    this.#open--;
    if (peer === '') return;
    // A count below zero is kept, not floored: it would show a connection ended twice.
    const remaining = (this.#perPeer.get(peer) ?? 0) - 1;
    if (remaining === 0) this.#perPeer.delete(peer);
    else this.#perPeer.set(peer, remaining);
  }

  /** Counts every connection counted here in `other` too, which takes over from here. */
  copyInto(other: AdmissionCounts): void {
    const unlimited = { maxConnections: 0, maxConnectionsPerIp: Number.MAX_SAFE_INTEGER };
    let byPeer = 0;
    for (const [peer, count] of this.#perPeer) {
      for (let i = 0; i < count; i++) other.admit(peer, unlimited);
      byPeer += count;
    }
    for (let i = byPeer; i < this.#open; i++) other.admit('', unlimited);
  }
}
