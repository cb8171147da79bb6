import type { ConcreteTransportName } from '../protocol/messages.ts';
import type { Delivery, DeliveryName, DeliverySettings } from './delivery.ts';
import { HandoffDelivery } from './handoff/main.ts';
import type { Intake } from './intake.ts';
import { PipeDelivery } from './pipe/main.ts';

export * from './delivery.ts';
export type * from './intake.ts';

/**
 * The deliveries in use: the one chosen for TCP connections, and for Unix-socket ones (an app's
 * server listening on a path) the pipe, since such a connection cannot move to another thread.
 * The pipe is made when first needed: it holds a directory of sockets.
 */
export class Deliveries {
  readonly tcp: Delivery;
  readonly #settings: DeliverySettings;
  #pipe: PipeDelivery | undefined;

  constructor(tcp: DeliveryName, settings: DeliverySettings) {
    this.#settings = settings;
    if (tcp === 'pipe') this.#pipe = new PipeDelivery(settings);
    this.tcp = this.#pipe ?? new HandoffDelivery(settings);
  }

  get unix(): PipeDelivery {
    this.#pipe ??= new PipeDelivery(this.#settings);
    return this.#pipe;
  }

  /** Each delivery made so far, once. */
  get all(): Delivery[] {
    return this.#pipe && this.#pipe !== this.tcp ? [this.tcp, this.#pipe] : [this.tcp];
  }
}

/** A transport, as users name it: who accepts the public port's connections, and how they reach a worker. */
export interface Transport {
  readonly name: ConcreteTransportName;
  readonly intake: Intake;
  readonly deliveries: Deliveries;
}
