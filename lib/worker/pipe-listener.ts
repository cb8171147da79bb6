import net from 'node:net';
import fs from 'node:fs';
import type { ProxySocketAddressInfo } from '../address-info.ts';
import { decodePreamble } from '../preamble.ts';

const PREAMBLE_DEADLINE_MS = 5_000;

export type Accept = (socket: net.Socket, info: ProxySocketAddressInfo) => void;

/** The worker's end of the pipe transport: a private Unix socket whose connections open with a preamble. */
export async function listenForPipe(path: string, token: string, accept: Accept): Promise<net.Server> {
  fs.rmSync(path, { force: true });
  const server = net.createServer({ allowHalfOpen: true }, (socket) => readPreamble(socket, token, accept));
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

function readPreamble(socket: net.Socket, token: string, accept: Accept): void {
  let received: Buffer = Buffer.alloc(0);
  const deadline = setTimeout(() => socket.destroy(), PREAMBLE_DEADLINE_MS).unref();
  const onError = (): void => {
    clearTimeout(deadline);
    socket.destroy();
  };
  const onReadable = (): void => {
    let chunk: Buffer | null;
    while ((chunk = socket.read() as Buffer | null) !== null) {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const result = decodePreamble(received, token);
      if (result.status === 'incomplete') continue;
      clearTimeout(deadline);
      socket.off('readable', onReadable);
      socket.off('error', onError);
      if (result.status === 'invalid') {
        socket.destroy();
        return;
      }
      if (received.length > result.length) socket.unshift(received.subarray(result.length));
      accept(socket, result.info);
      return;
    }
  };
  socket.on('error', onError);
  socket.on('readable', onReadable);
}
