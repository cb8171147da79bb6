import type net from 'node:net';
import type { ProxySocketAddressInfo } from '../protocol/address-info.ts';
import type { WorkerBootData } from '../protocol/messages.ts';

/** Where a worker's transport delivers the connections it receives: the worker's ServiceAgent. */
export interface ConnectionSink {
  /** `peer` is the address the proxy accepted the connection from; `pipeId` names a piped one. */
  accept(socket: net.Socket, info?: ProxySocketAddressInfo, peer?: string, pipeId?: number): void;
  /** Closes a connection whose PROXY header was missing or malformed, without the server seeing it. */
  reject(socket: net.Socket, peer: string, reason: string): void;
  recordHandoff(acceptedAt: number): void;
}

/** The worker's end of a transport. */
export interface WorkerTransport {
  /** Starts receiving connections; `sink` gives the agent they go to, once there is one. */
  start(context: WorkerBootData, sink: () => ConnectionSink): Promise<void>;
}
