import type net from 'node:net';
import { connectionBudget } from '../../fd-budget.ts';
import { sharedClock, type ToWorker } from '../../protocol/messages.ts';
import type { DeliverySettings, DispatchTarget, Delivery, Route } from '../delivery.ts';

/** A moved socket is still one descriptor of this process, whichever thread holds it. */
const FDS_PER_CONNECTION = 1;

/** Transfers the accepted TCP socket itself: the worker then owns the client connection. */
export class HandoffDelivery implements Delivery {
  readonly name = 'handoff';
  // A socket must move before anything reads it.
  readonly readsOnMainThread = false;
  /** When set, the worker measures how long the move took and reports it back in batches. */
  readonly #timed: boolean;
  readonly #peerOf: DeliverySettings['peerOf'];
  readonly #maxWorkers: number;

  constructor(settings: DeliverySettings) {
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

  deliver<T extends DispatchTarget>(target: T, socket: net.Socket, route: Route<T>): void {
    const message: ToWorker = { type: 'connection', socket };
    if (this.#timed) message.acceptedAt = sharedClock();
    if (this.#peerOf) message.peer = this.#peerOf(socket);
    if (route.sharedPort !== 0) message.sharedPort = route.sharedPort;
    try {
      target.port.postMessage(message, [socket as never]);
    } catch {
      route.outcome.refused(target, socket);
      return;
    }
    route.outcome.delivered(target, socket);
  }

  // The worker holds each connection it was given, and counts it out itself.
  workerClosed(): void {}

  workerExited(): void {}

  async close(): Promise<void> {}
}
