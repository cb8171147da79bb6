import type net from 'node:net';
import type { FromWorker, WorkerBootData } from '../../protocol/messages.ts';
import { readPrefix } from '../../protocol/read-prefix.ts';
import { parseProxyHeader } from '../../proxy-protocol/parser.ts';
import type { WorkerTransportFactory } from '../worker-transport.ts';
import { adoptMovedSocket } from './adopt-socket.ts';

/**
 * Moves a connection not yet read back to the main thread, for another worker: its server here was
 * closed while it was on its way. `own` marks one this worker accepted itself (reuseport). Returns
 * false when it cannot move, and stays here.
 */
export function giveBack(
  context: WorkerBootData,
  socket: net.Socket,
  sharedPort: number | undefined,
  own: boolean,
): boolean {
  const message: FromWorker = { type: 'connection-refused', socket, own };
  if (sharedPort) message.sharedPort = sharedPort;
  try {
    context.port.postMessage(message, [socket as never]);
    return true;
  } catch {
    return false;
  }
}

/** The worker's end of hand-off: sockets arrive in messages from the proxy. */
export const handoffWorker: WorkerTransportFactory = (context, sink) => {
  const { proxyHeaderTimeout } = context;
  return {
    async start() {},
    receive(message) {
      // The others are reuseport's, never sent with hand-off alone.
      if (message.type !== 'connection') return;
      const agent = sink();
      const { acceptedAt, peer, sharedPort } = message;
      const socket: net.Socket = adoptMovedSocket(message.socket);
      if (acceptedAt !== undefined) agent.recordHandoff(acceptedAt);
      if (!agent.takes(sharedPort) && giveBack(context, socket, sharedPort, false)) return;
      // The main thread must not read a socket it moves, so a PROXY header is read here.
      if (proxyHeaderTimeout === undefined) {
        agent.accept(socket, undefined, peer, undefined, sharedPort);
        return;
      }
      readPrefix(socket, parseProxyHeader, proxyHeaderTimeout, (outcome) => {
        if (outcome.status === 'ok') agent.accept(socket, outcome.info, peer, undefined, sharedPort);
        else agent.reject(socket, peer ?? socket.remoteAddress ?? '', outcome.reason);
      });
    },
  };
};
