import type net from 'node:net';
import type { AdmissionCounts } from '../limits.ts';
import type { ReuseportBoot } from '../protocol/messages.ts';
import type { DispatchTarget } from './delivery.ts';

/** Open-connection counts that workers keep themselves, read from the main thread. */
export interface OwnConnections {
  /** Open now. */
  open(): number;
  /** Since the worker started. */
  total(): number;
}

/** What the workers did with the connections they accepted themselves. */
export interface OwnCounters {
  accepted: number;
  refused: number;
  forwarded: number;
}

/**
 * Who accepts the public port's connections: the main thread, which dispatches each one, or the
 * workers themselves. Told of each worker's life in the pool, as node:cluster's handles are.
 */
export interface Intake {
  /** What worker `id` must know at boot to accept connections itself; undefined where it accepts none. */
  workerBoot(id: number, slot: number): ReuseportBoot | undefined;
  /** The worker serves, and may take connections (again, after a stall). */
  add(target: DispatchTarget): void;
  /** The worker must take none for now (stalled), or for good (retiring). */
  rest(target: DispatchTarget, retiring: boolean): void;
  /** The worker exited. */
  remove(target: DispatchTarget): void;
  /** The worker gave back a listener it accepted on. */
  listenerReturned(target: DispatchTarget, server: net.Server): void;
  /** The connections the worker accepted itself; undefined where workers accept none. */
  ownConnections(target: DispatchTarget): OwnConnections | undefined;
  ownCounters(): OwnCounters;
  /** Counts the main thread must admit its own connections against, where workers admit theirs. */
  readonly sharedCounts: AdmissionCounts | undefined;
  /** Stops accepting on the public port. */
  stopAccepting(): void;
}
