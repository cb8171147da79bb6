import type net from 'node:net';
import type { ProxySocketAddressInfo } from '../protocol/address-info.ts';
import type { WorkerBootData } from '../protocol/messages.ts';

/** Where a worker's transport delivers the connections it receives: the worker's ServiceAgent. */
export interface ConnectionSink {
  /**
   * `peer` is the address the proxy accepted the connection from; `pipeId` names a piped one;
   * `listener` the server it is for, 0 or absent for the public port's.
   */
  accept(socket: net.Socket, info?: ProxySocketAddressInfo, peer?: string, pipeId?: number, listener?: number): void;
  /** Closes a connection whose PROXY header was missing or malformed, without the server seeing it. */
  reject(socket: net.Socket, peer: string, reason: string): void;
  /** The same, for a connection the worker accepted itself (reuseport), counted in shared memory, not by the proxy. */
  acceptOwn(socket: net.Socket, info: ProxySocketAddressInfo | undefined): void;
  rejectOwn(socket: net.Socket, reason: string): void;
  recordHandoff(acceptedAt: number): void;
}

/** The worker's end of a transport. */
export interface WorkerTransport {
  /** Starts receiving connections; `sink` gives the agent they go to, once there is one. */
  start(context: WorkerBootData, sink: () => ConnectionSink): Promise<void>;
}

/** The pipe transport's worker end, which a worker may also need for a Unix-socket listener of its app. */
export interface PipeWorkerTransport extends WorkerTransport {
  listening: boolean;
}
