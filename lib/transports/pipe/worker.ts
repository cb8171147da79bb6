import net from 'node:net';
import { loadFs } from '../../builtins.ts';
import { readPrefix } from '../../protocol/read-prefix.ts';
import { kInternalServer } from '../../worker/listen.ts';
import type { PipeWorkerTransport } from '../worker-transport.ts';
import { decodePreamble } from './preamble.ts';

const PREAMBLE_DEADLINE_MS = 5_000;

/** The worker's end of the pipe transport: a private Unix socket whose connections open with a preamble. */
export const pipeWorker: PipeWorkerTransport = {
  listening: false,
  async start(context, sink) {
    const { pipePath, token } = context;
    this.listening = true;
    loadFs().rmSync(pipePath!, { force: true });
    // A connection whose preamble does not arrive is closed here; the proxy sees the close and counts it out.
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      readPrefix(
        socket,
        (data) => decodePreamble(data, token),
        PREAMBLE_DEADLINE_MS,
        (outcome) => {
          if (outcome.status === 'ok') sink().accept(socket, outcome.info, outcome.peer, outcome.id, outcome.listener);
          else socket.destroy();
        },
      );
    });
    (server as net.Server & { [kInternalServer]?: true })[kInternalServer] = true;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(pipePath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Out of file descriptors, an accept fails; libuv sheds that connection and goes on accepting.
    server.on('error', () => {});
  },
};
