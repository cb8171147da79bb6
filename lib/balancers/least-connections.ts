import type { Balancer, BalancerCandidate } from './balancer.ts';

/** Fewest open connections wins; ties rotate so idle workers share new work. */
export class LeastConnectionsBalancer implements Balancer {
  #start = 0;

  pick<T extends BalancerCandidate>(candidates: readonly T[]): T | undefined {
    const count = candidates.length;
    if (count === 0) return undefined;
    this.#start = (this.#start + 1) % count;
    let best = candidates[this.#start]!;
    for (let i = 1; i < count; i++) {
      const candidate = candidates[(this.#start + i) % count]!;
      if (candidate.connections < best.connections) best = candidate;
    }
    return best;
  }
}
