import type net from 'node:net';
import type { MessagePort } from 'node:worker_threads';

export const transportNames = ['auto', 'handoff', 'pipe', 'reuseport'] as const;
export type TransportName = (typeof transportNames)[number];
export type DeliveryName = 'handoff' | 'pipe';

/** The main thread's view of a worker, as far as moving a connection to it goes. */
export interface DispatchTarget {
  readonly id: number;
  /** The pool position it fills, which a replacement takes over. */
  readonly slot: number;
  readonly port: MessagePort;
}

/** Which of the worker's servers a connection is for (0: the public port's), and who hears its fate. */
export interface Route<T extends DispatchTarget = DispatchTarget> {
  readonly sharedPort: number;
  readonly outcome: DispatchOutcome<T>;
  /** The connections come to a Unix socket: they have no address to pass on. */
  readonly unix: boolean;
}

/**
 * What became of a connection given to deliver(): exactly one of delivered, refused or dropped;
 * then, for a delivery that counts its connections on the main thread, ended once.
 */
export interface DispatchOutcome<T extends DispatchTarget = DispatchTarget> {
  /** The connection reached the worker. */
  delivered(target: T, socket: net.Socket): void;
  /** The worker could not take the connection, which is intact: another worker may. */
  refused(target: T, socket: net.Socket): void;
  /** The connection ended before it reached the worker. */
  dropped(target: T, socket: net.Socket): void;
  /** A delivered connection that this delivery counts on the main thread ended. */
  ended(target: T, socket: net.Socket): void;
}

/** Called with each hand-off's duration, from accept to the worker's server, when that is measured. */
export type LatencyRecorder = (seconds: number) => void;

export interface DeliverySettings {
  /** The pipe preamble's secret. */
  token: string;
  recordLatency: LatencyRecorder | undefined;
  /** Given under a per-address limit: the peer each connection counts against, told to its worker. */
  peerOf: ((socket: net.Socket) => string) | undefined;
  maxWorkers: number;
}

/**
 * How a connection the main thread accepted reaches the worker chosen for it: the socket itself moves
 * (hand-off), or its bytes are piped over the worker's Unix socket (pipe).
 */
export interface Delivery {
  readonly name: DeliveryName;
  /** Whether the main thread may read a connection before delivering it (a PROXY header, say). */
  readonly readsOnMainThread: boolean;
  /** The connections the process can carry at once within its open-file limit, where that binds. */
  connectionBudget(): number | undefined;
  /** Where worker `id` takes this delivery's connections, if anywhere. */
  pipePathFor(id: number): string | undefined;
  deliver<T extends DispatchTarget>(target: T, socket: net.Socket, route: Route<T>): void;
  /** The worker reports the connections it closed by the ids this delivery gave them. */
  workerClosed(target: DispatchTarget, ids: readonly number[]): void;
  /** The worker exited: whatever connections it held are closed, reported or not. */
  workerExited(target: DispatchTarget): void;
  /**
   * Once the workers are gone: waits up to `timeout` ms for the connections the delivery still
   * carries on the main thread to finish, then closes the rest.
   */
  close(timeout: number): Promise<void>;
}
