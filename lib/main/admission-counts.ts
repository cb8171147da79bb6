import type { AdmissionCounts, AdmissionLimits, LimitName } from '../limits.ts';

export type { AdmissionCounts, AdmissionLimits, LimitName } from '../limits.ts';

/** The counts kept on the main thread. */
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
