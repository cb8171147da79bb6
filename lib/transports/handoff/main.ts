import type net from 'node:net';
import { connectionBudget } from '../../fd-budget.ts';
import { sharedClock, type ToWorker } from '../../protocol/messages.ts';
import type { DispatchTarget, Route, Transport, TransportSettings } from '../transport.ts';

/** A moved socket is still one descriptor of this process, whichever thread holds it. */
const FDS_PER_CONNECTION = 1;

/** Transfers the accepted TCP socket itself: the worker then owns the client connection. */
export class HandoffTransport implements Transport {
  readonly name = 'handoff';
  // A socket must move before anything reads it.
  readonly readsOnMainThread = false;
  /** When set, the worker measures how long the move took and reports it back in batches. */
  readonly #timed: boolean;
  readonly #peerOf: TransportSettings['peerOf'];
  readonly #maxWorkers: number;

  constructor(settings: TransportSettings) {
    this.#timed = settings.recordLatency !== undefined;
    this.#peerOf = settings.peerOf;
    this.#maxWorkers = settings.maxWorkers;
  }

  connectionBudget(): number | undefined {
    return connectionBudget(FDS_PER_CONNECTION, this.#maxWorkers);
  }

  pipePathFor(): undefined {
    return undefined;
  }

  dispatch(target: DispatchTarget, socket: net.Socket, route: Route): void {
    const message: ToWorker = { type: 'connection', socket };
    if (this.#timed) message.acceptedAt = sharedClock();
    if (this.#peerOf) message.peer = this.#peerOf(socket);
    if (route.listener !== 0) message.listener = route.listener;
    try {
      target.port.postMessage(message, [socket as never]);
    } catch {
      route.outcome.refused(target, socket);
      return;
    }
    route.outcome.delivered(target, socket);
  }

  async close(): Promise<void> {}
}
