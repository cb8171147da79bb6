import type net from 'node:net';
import type { MessagePort } from 'node:worker_threads';
import type { ConcreteTransportName, ReuseportBoot } from '../protocol/messages.ts';

export const transportNames = ['auto', 'handoff', 'pipe', 'reuseport'] as const;
export type TransportName = (typeof transportNames)[number];

/** The main thread's view of a worker, as far as moving a connection to it goes. */
export interface DispatchTarget {
  readonly id: number;
  /** The pool position it fills, which a replacement takes over. */
  readonly slot: number;
  readonly port: MessagePort;
}

/** Which of the worker's servers a connection is for (0: the public port's), and who hears its fate. */
export interface Route {
  readonly listener: number;
  readonly outcome: DispatchOutcome;
  /** The connections come to a Unix socket: they have no address to pass on. */
  readonly unix: boolean;
}

/**
 * What became of a connection given to dispatch(): exactly one of delivered, refused or dropped;
 * then, for a transport that counts its connections on the main thread, ended once.
 */
export interface DispatchOutcome {
  /** The connection reached the worker. */
  delivered(target: DispatchTarget, socket: net.Socket): void;
  /** The worker could not take the connection, which is intact: another worker may. */
  refused(target: DispatchTarget, socket: net.Socket): void;
  /** The connection ended before it reached the worker. */
  dropped(target: DispatchTarget, socket: net.Socket): void;
  /** A delivered connection that this transport counts on the main thread ended. */
  ended(target: DispatchTarget, socket: net.Socket): void;
}

/** Called with each hand-off's duration, from accept to the worker's server, when that is measured. */
export type LatencyRecorder = (seconds: number) => void;

export interface TransportSettings {
  /** The pipe preamble's secret. */
  token: string;
  recordLatency: LatencyRecorder | undefined;
  /** Given under a per-address limit: the peer each connection counts against, told to its worker. */
  peerOf: ((socket: net.Socket) => string) | undefined;
  maxWorkers: number;
}

/** The main thread's end of a transport: moves accepted client connections into workers. */
export interface Transport {
  readonly name: ConcreteTransportName;
  /** Whether the main thread may read a connection before dispatching it (a PROXY header, say). */
  readonly readsOnMainThread: boolean;
  /** The connections the process can carry at once within its open-file limit, where that binds. */
  connectionBudget(): number | undefined;
  /** Where worker `id` listens for this transport's connections, if anywhere. */
  pipePathFor(id: number): string | undefined;
  dispatch(target: DispatchTarget, socket: net.Socket, route: Route): void;
  /** Workers report the connections they closed by these ids, where the transport gave them ids. */
  workerClosed?(target: DispatchTarget, ids: readonly number[]): void;
  /** The worker exited: whatever connections it held are closed, reported or not. */
  workerExited?(target: DispatchTarget): void;
  /**
   * Once the workers are gone: waits up to `timeout` ms for the connections the transport still
   * carries on the main thread to finish, then closes the rest.
   */
  close(timeout: number): Promise<void>;
  // Where workers accept connections themselves (reuseport), the transport follows their lives:
  /** What worker `id` must know at boot to accept connections itself. */
  workerBoot?(id: number, slot: number): ReuseportBoot | undefined;
  /** The worker serves, and may be given connections (again, after a stall). */
  workerServing?(target: DispatchTarget): void;
  /** The worker must be given none for now: stalled, or for good: retiring. */
  workerResting?(target: DispatchTarget, retiring: boolean): void;
  /** The connections the worker accepted itself: open now, and since it started. */
  ownConnections?(target: DispatchTarget): { open(): number; total(): number } | undefined;
  /** The worker gave back a listener of the public port. */
  listenerReturned?(target: DispatchTarget, server: net.Server): void;
  /** Stop taking connections on the public port. */
  stopAccepting?(): void;
  /** The open-connection counts workers admit connections against themselves, which the main thread must share. */
  readonly sharedCounts?: {
    readonly open: number;
    openFrom(peer: string): number;
    admit(
      peer: string,
      limits: { maxConnections: number; maxConnectionsPerIp: number },
    ): 'maxConnections' | 'maxConnectionsPerIp' | undefined;
    release(peer: string): void;
  };
  /** What the workers did with the connections they accepted themselves. */
  counters?(): { accepted: number; refused: number; forwarded: number };
}
