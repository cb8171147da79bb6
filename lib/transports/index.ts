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

/**
 * Moves an accepted client connection into a worker. A transport that cannot complete the move
 * calls `refused`, with the socket still intact, so that the proxy can offer it to another worker.
 */
export interface Transport {
  readonly name: ConcreteTransportName;
  dispatch(target: DispatchTarget, socket: net.Socket, refused: (socket: net.Socket) => void): void;
}

/** Called with each hand-off's duration, from accept to the worker's server, when that is measured. */
export type LatencyRecorder = (seconds: number) => void;

export function createTransport(name: ConcreteTransportName, token: string, recordLatency?: LatencyRecorder): Transport {
  return name === 'handoff' ? new HandoffTransport(recordLatency !== undefined) : new PipeTransport(token, recordLatency);
}

export { probeHandoff } from './handoff.ts';
