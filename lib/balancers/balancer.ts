import type net from 'node:net';

/** What a balancer may know about a worker. */
export interface BalancerCandidate {
  /** Stable for the life of the worker, unique within the proxy. */
  readonly id: number;
  /** The pool position the worker fills: its replacement, after a crash or in a reload, takes it over. */
  readonly slot: number;
  readonly connections: number;
  /** Share of time the worker's event loop was busy since the last call with the same mark. */
  eventLoopUtilization?(mark: string): number;
}

/** Picks the worker for a new connection among those that can take one right now. */
export interface Balancer {
  pick<T extends BalancerCandidate>(candidates: readonly T[], socket: net.Socket): T | undefined;
  /** Stops whatever the balancer runs in the background. */
  close?(): void;
}

export const balancerNames = ['least-connections', 'round-robin', 'ip-hash', 'least-loaded'] as const;
export type BalancerName = (typeof balancerNames)[number];
