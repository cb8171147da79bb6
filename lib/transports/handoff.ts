import net from 'node:net';
import { once } from 'node:events';
import { MessageChannel } from 'node:worker_threads';
import { sharedClock, type ToWorker } from '../messages.ts';
import type { DispatchOutcome, DispatchTarget, Transport, TransportSettings } from './index.ts';

interface Batch {
  sockets: net.Socket[];
  acceptedAt: number[];
  outcome: DispatchOutcome;
}

/**
 * Transfers the accepted TCP socket itself: the worker then owns the client connection. The sockets
 * accepted in one turn of the event loop go to each worker in one message.
 */
export class HandoffTransport implements Transport {
  readonly name = 'handoff';
  /** When set, the worker measures how long the move took and reports it back in batches. */
  readonly #timed: boolean;
  readonly #sendPeer: boolean;
  readonly #batches = new Map<DispatchTarget, Batch>();

  constructor(settings: TransportSettings) {
    this.#timed = settings.recordLatency !== undefined;
    this.#sendPeer = settings.sendPeer;
  }

  dispatch(target: DispatchTarget, socket: net.Socket, outcome: DispatchOutcome): void {
    if (this.#batches.size === 0) setImmediate(this.#flush);
    let batch = this.#batches.get(target);
    if (!batch) this.#batches.set(target, (batch = { sockets: [], acceptedAt: [], outcome }));
    batch.sockets.push(socket);
    if (this.#timed) batch.acceptedAt.push(sharedClock());
  }

  readonly #flush = (): void => {
    // Taken out first: a refused socket is dispatched again, into a batch of the next turn.
    const batches = [...this.#batches];
    this.#batches.clear();
    for (const [target, batch] of batches) this.#send(target, batch);
  };

  #send(target: DispatchTarget, batch: Batch): void {
    // A socket that closed while it waited cannot move, and would spoil the whole message.
    const sockets: net.Socket[] = [];
    const acceptedAt: number[] = [];
    batch.sockets.forEach((socket, i) => {
      if (socket.destroyed) return batch.outcome.dropped(target, socket);
      sockets.push(socket);
      if (this.#timed) acceptedAt.push(batch.acceptedAt[i]!);
    });
    if (sockets.length === 0) return;
    // A message to a worker that has exited would vanish, and the sockets in it with it.
    if (target.state === 'exited') {
      for (const socket of sockets) batch.outcome.refused(target, socket);
      return;
    }
    const message: ToWorker = { type: 'connections', sockets };
    if (this.#timed) message.acceptedAt = acceptedAt;
    if (this.#sendPeer) message.peers = sockets.map((socket) => socket.remoteAddress ?? '');
    try {
      target.port.postMessage(message, sockets as never[]);
    } catch {
      // Sent one by one, only the socket that cannot move is refused (one that the failed message
      // had already taken is closed by now, and so dropped).
      if (sockets.length === 1) batch.outcome.refused(target, sockets[0]!);
      else sockets.forEach((socket, i) => this.#send(target, { ...batch, sockets: [socket], acceptedAt: acceptedAt.slice(i, i + 1) }));
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
