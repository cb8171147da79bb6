import net from 'node:net';
import type { ProxySocketAddressInfo } from '../address-info.ts';
import { loadFs } from '../builtins.ts';
import { decodePreamble } from '../preamble.ts';
import { readPrefix } from '../read-prefix.ts';

const PREAMBLE_DEADLINE_MS = 5_000;

export type Accept = (socket: net.Socket, info: ProxySocketAddressInfo, peer: string, id: number) => void;

/** The worker's end of the pipe transport: a private Unix socket whose connections open with a preamble. */
export async function listenForPipe(path: string, token: string, accept: Accept): Promise<net.Server> {
  loadFs().rmSync(path, { force: true });
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    readPrefix(socket, (data) => decodePreamble(data, token), PREAMBLE_DEADLINE_MS, (outcome) => {
      if (outcome.status === 'ok') accept(socket, outcome.info, outcome.peer, outcome.id);
      else socket.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Out of file descriptors, an accept fails; libuv sheds that connection and goes on accepting.
  server.on('error', () => {});
  return server;
}
