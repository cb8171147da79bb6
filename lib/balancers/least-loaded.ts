import type { Balancer, BalancerCandidate } from './balancer.ts';

/** How often each worker's event-loop use is read: often enough to see a long task within a few ms. */
const SAMPLE_MS = 5;
/** What one connection given since the last reading is assumed to add, so picks spread between readings. */
const PENDING_WEIGHT = 0.1;
/** A loop this busy over a whole reading never went idle: it is saturated, or stuck in one task. */
const SATURATED = 0.99;
/** Ranks saturated workers behind every other; among them, the one saturated longest comes last. */
const SATURATED_PENALTY = 1_000;
/** Readings stop after this long without a pick, and start again with the next one. */
const IDLE_STOP_MS = 1_000;

/**
 * The worker whose event loop was least busy lately wins, with fewer open connections breaking
 * ties. Readings are taken on the main thread every SAMPLE_MS while connections keep coming, so
 * that a worker that blocks between two connections is seen before the next one is placed.
 *
 * A worker blocked by one long task reads fully busy, and so may a worker merely busy with many
 * short ones; what tells them apart is how long that has lasted, so a worker's score grows with the
 * time it has gone without its loop ever being idle.
 */
let balancers = 0;

export class LeastLoadedBalancer implements Balancer {
  /** Each balancer reads the workers' event loops over windows of its own (one per port). */
  readonly #mark = `least-loaded:${++balancers}`;
  #load = new Map<number, number>();
  readonly #saturatedSince = new Map<number, number>();
  #sampledAt = -Infinity;
  #candidates: readonly BalancerCandidate[] = [];
  #lastPickAt = 0;
  #timer: NodeJS.Timeout | undefined;

  pick<T extends BalancerCandidate>(candidates: readonly T[]): T | undefined {
    if (candidates.length === 0) return undefined;
    const now = performance.now();
    this.#candidates = candidates;
    this.#lastPickAt = now;
    if (now - this.#sampledAt >= SAMPLE_MS) this.#sample(candidates, now);
    this.#timer ??= setInterval(this.#tick, SAMPLE_MS).unref();
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

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  readonly #tick = (): void => {
    const now = performance.now();
    if (now - this.#lastPickAt > IDLE_STOP_MS) this.close();
    else this.#sample(this.#candidates, now);
  };

  #sample(candidates: readonly BalancerCandidate[], now: number): void {
    const windowStart = this.#sampledAt;
    this.#sampledAt = now;
    const load = new Map<number, number>();
    for (const candidate of candidates) {
      const utilization = candidate.eventLoopUtilization?.(this.#mark) ?? 0;
      if (utilization < SATURATED) {
        this.#saturatedSince.delete(candidate.id);
        load.set(candidate.id, utilization);
        continue;
      }
      const since = this.#saturatedSince.get(candidate.id) ?? (Number.isFinite(windowStart) ? windowStart : now);
      this.#saturatedSince.set(candidate.id, since);
      load.set(candidate.id, SATURATED_PENALTY + (now - since));
    }
    for (const id of this.#saturatedSince.keys()) if (!load.has(id)) this.#saturatedSince.delete(id);
    this.#load = load;
  }
}
