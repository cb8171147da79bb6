import net from 'node:net';
import { loadFs } from '../../builtins.ts';
import { readPrefix } from '../../protocol/read-prefix.ts';
import { kInternalServer } from '../../worker/listen.ts';
import type { ConnectionSink, WorkerTransportFactory } from '../worker-transport.ts';
import { BETWEEN_WORKERS, decodePreamble, PIPE_REFUSED, PIPE_TAKEN } from './preamble.ts';

const PREAMBLE_DEADLINE_MS = 5_000;
const TAKEN = Buffer.of(PIPE_TAKEN);
const REFUSED = Buffer.of(PIPE_REFUSED);

/** The worker's one Unix-socket listener, once opened. */
let listener: net.Server | undefined;

/**
 * Takes piped connections on the worker's private Unix socket at `pipePath`, whose connections open
 * with a preamble; once per worker, which may need it for a Unix-socket listener of its app as well.
 */
export async function listenOnPipe(pipePath: string, token: string, sink: () => ConnectionSink): Promise<void> {
  if (listener) return;
  loadFs().rmSync(pipePath, { force: true });
  // A connection whose preamble does not arrive is closed here; the proxy sees the close and counts it out.
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    readPrefix(
      socket,
      (data) => decodePreamble(data, token),
      PREAMBLE_DEADLINE_MS,
      (outcome) => {
        if (outcome.status !== 'ok') {
          socket.destroy();
          return;
        }
        const { info, peer, id, sharedPort } = outcome;
        const agent = sink();
        if (id !== BETWEEN_WORKERS) {
          if (!agent.takes(sharedPort)) {
            socket.end(REFUSED);
            return;
          }
          socket.write(TAKEN);
        }
        agent.accept(socket, info, peer, id, sharedPort);
      },
    );
  });
  listener = server;
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
}

/** Takes no more piped connections: the worker has finished, and its listener must not keep it alive. */
export function stopListeningOnPipe(): void {
  if (listener?.listening) listener.close();
}

/** The worker's end of the pipe transport: its connections come over the Unix socket, not in messages. */
export const pipeWorker: WorkerTransportFactory = (context, sink) => ({
  start: () => listenOnPipe(context.pipePath!, context.token, sink),
  receive() {},
});
