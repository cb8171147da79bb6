import type { Balancer, BalancerCandidate } from './index.ts';

/** How often each worker's event-loop use is read: about one busy request's worth. */
const SAMPLE_MS = 10;
/** What one connection given since the last reading is assumed to add, so picks spread between readings. */
const PENDING_WEIGHT = 0.1;

/**
 * The worker whose event loop was least busy lately wins, with fewer open connections breaking
 * ties. Readings are taken on the main thread, at most every SAMPLE_MS, during pick() itself.
 */
export class LeastLoadedBalancer implements Balancer {
  #load = new Map<number, number>();
  #sampledAt = -Infinity;

  pick<T extends BalancerCandidate>(candidates: readonly T[]): T | undefined {
    if (candidates.length === 0) return undefined;
    const now = performance.now();
    if (now - this.#sampledAt >= SAMPLE_MS) {
      this.#sampledAt = now;
      this.#load = new Map(candidates.map((c) => [c.id, c.eventLoopUtilization?.('balance') ?? 0]));
    }
    let best = candidates[0]!;
    let bestLoad = this.#load.get(best.id) ?? 0;
    for (let i = 1; i < candidates.length; i++) {
      const candidate = candidates[i]!;
      const load = this.#load.get(candidate.id) ?? 0;
      if (load < bestLoad || (load === bestLoad && candidate.connections < best.connections)) {
        best = candidate;
        bestLoad = load;
      }
    }
    this.#load.set(best.id, bestLoad + PENDING_WEIGHT);
    return best;
  }
}
