import type net from 'node:net';
import type { ProxySocketAddressInfo } from '../protocol/address-info.ts';
import type { ToWorker, WorkerBootData } from '../protocol/messages.ts';

/** Where a worker's transport delivers the connections it receives: the worker's ServiceAgent. */
export interface ConnectionSink {
  /**
   * Whether the server a connection is for (`sharedPort`; absent or 0 for the public port's) still
   * takes connections: false once its app closed it. A transport gives such a connection back,
   * unread, for another worker.
   */
  takes(sharedPort?: number): boolean;
  /**
   * `peer` is the address the proxy accepted the connection from; `pipeId` names a piped one;
   * `sharedPort` the app's server it is for, 0 or absent for the public port's.
   */
  accept(socket: net.Socket, info?: ProxySocketAddressInfo, peer?: string, pipeId?: number, sharedPort?: number): void;
  /** Closes a connection whose PROXY header was missing or malformed, without the server seeing it. */
  reject(socket: net.Socket, peer: string, reason: string): void;
  /** The same, for a connection the worker accepted itself (reuseport), counted in shared memory, not by the proxy. */
  acceptOwn(socket: net.Socket, info: ProxySocketAddressInfo | undefined): void;
  rejectOwn(socket: net.Socket, reason: string): void;
  recordHandoff(acceptedAt: number): void;
}

/** The messages from the proxy that are a transport's: the worker's router passes them to its transport. */
export type TransportMessage = Extract<
  ToWorker,
  { type: 'connection' | 'lend-listener' | 'return-listeners' | 'close-listeners' | 'peer' | 'peer-gone' }
>;

/** The worker's end of a transport. */
export interface WorkerTransport {
  /** Starts receiving connections. */
  start(): Promise<void>;
  receive(message: TransportMessage): void;
}

/** Makes a worker's end of a transport; `sink` gives the agent connections go to, once there is one. */
export type WorkerTransportFactory = (context: WorkerBootData, sink: () => ConnectionSink) => WorkerTransport;
