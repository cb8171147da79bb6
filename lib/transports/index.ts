import type net from 'node:net';
import type { MessagePort } from 'node:worker_threads';
import type { ConcreteTransportName } from '../messages.ts';
import { HandoffTransport } from './handoff.ts';
import { PipeTransport } from './pipe.ts';

export const transportNames = ['auto', 'handoff', 'pipe'] as const;
export type TransportName = (typeof transportNames)[number];

/** The main thread's view of a worker, as far as moving a connection to it goes. */
export interface DispatchTarget {
  readonly port: MessagePort;
  readonly pipePath: string | undefined;
}

/** How a move that did not reach the worker ended. */
export interface DispatchOutcome {
  /** The worker could not take the connection, which is intact: another worker may. */
  refused(target: DispatchTarget, socket: net.Socket): void;
  /** The connection ended before it reached the worker. */
  dropped(target: DispatchTarget, socket: net.Socket): void;
}

/** Moves an accepted client connection into a worker. */
export interface Transport {
  readonly name: ConcreteTransportName;
  dispatch(target: DispatchTarget, socket: net.Socket, outcome: DispatchOutcome): void;
  /** Workers report the connections they closed by these ids, where the transport gave them ids. */
  workerClosed?(ids: readonly number[]): void;
  /** The worker exited: whatever connections it held are closed, reported or not. */
  workerExited?(target: DispatchTarget): void;
  /**
   * Once the workers are gone: waits up to `timeout` ms for the connections the transport still
   * carries on the main thread to finish, then closes the rest.
   */
  close?(timeout: number): Promise<void>;
}

export interface TransportSettings {
  /** The pipe preamble's secret. */
  token: string;
  /** Called with each hand-off's duration, when hand-offs are measured. */
  recordLatency?: LatencyRecorder | undefined;
  /** Tell the worker the address each connection was accepted from, for per-address limits. */
  sendPeer: boolean;
}

/** Called with each hand-off's duration, from accept to the worker's server, when that is measured. */
export type LatencyRecorder = (seconds: number) => void;

export function createTransport(name: ConcreteTransportName, settings: TransportSettings): Transport {
  return name === 'handoff' ? new HandoffTransport(settings) : new PipeTransport(settings);
}

export { probeHandoff } from './handoff.ts';
