import net from 'node:net';
import { once } from 'node:events';
import { MessageChannel } from 'node:worker_threads';
import { sharedClock, type ToWorker } from '../messages.ts';
import type { DispatchOutcome, DispatchTarget, Transport, TransportSettings } from './index.ts';

/** Transfers the accepted TCP socket itself: the worker then owns the client connection. */
export class HandoffTransport implements Transport {
  readonly name = 'handoff';
  /** When set, the worker measures how long the move took and reports it back in batches. */
  readonly #timed: boolean;
  readonly #sendPeer: boolean;

  constructor(settings: TransportSettings) {
    this.#timed = settings.recordLatency !== undefined;
    this.#sendPeer = settings.sendPeer;
  }

  dispatch(target: DispatchTarget, socket: net.Socket, outcome: DispatchOutcome): void {
    const message: ToWorker = { type: 'connection', socket };
    if (this.#timed) message.acceptedAt = sharedClock();
    if (this.#sendPeer) message.peer = socket.remoteAddress ?? '';
    try {
      target.port.postMessage(message, [socket as never]);
    } catch {
      outcome.refused(target, socket);
    }
  }
}

let probe: Promise<string | undefined> | undefined;

/**
 * Whether this runtime can move a TCP socket to another thread, found by trying it once on a
 * loopback connection. Resolves to undefined when it can, or to the reason it cannot.
 */
export function probeHandoff(): Promise<string | undefined> {
  probe ??= runProbe();
  return probe;
}

async function runProbe(): Promise<string | undefined> {
  const server = net.createServer({ pauseOnConnect: true });
  const { port1, port2 } = new MessageChannel();
  let client: net.Socket | undefined;
  try {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'connection');
    client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    client.on('error', () => {});
    const [socket] = (await accepted) as [net.Socket];
    try {
      port1.postMessage(socket, [socket as never]);
    } catch (err) {
      socket.destroy();
      return (err as Error).message;
    }
    const [moved] = (await once(port2, 'message')) as [net.Socket];
    moved.destroy();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  } finally {
    client?.destroy();
    port1.close();
    port2.close();
    server.close();
  }
}
