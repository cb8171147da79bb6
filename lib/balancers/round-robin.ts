import type { Balancer, BalancerCandidate } from './balancer.ts';

export class RoundRobinBalancer implements Balancer {
  #next = 0;

  pick<T extends BalancerCandidate>(candidates: readonly T[]): T | undefined {
    if (candidates.length === 0) return undefined;
    if (this.#next >= candidates.length) this.#next = 0;
    return candidates[this.#next++];
  }
}
