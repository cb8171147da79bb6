import type net from 'node:net';
import { addressInfoOf, storedAddressInfo } from '../address-info.ts';
import { encodePreamble } from '../preamble.ts';
import type { DispatchOutcome, DispatchTarget, LatencyRecorder, Transport, TransportSettings } from './index.ts';
import { SlotTable } from './slot-table.ts';
import { Splice } from './splice.ts';

/**
 * Pipes bytes between the client and the worker over the worker's private Unix socket. Used when
 * TLS ends at the proxy or the runtime cannot move sockets between threads.
 */
export class PipeTransport implements Transport {
  readonly name = 'pipe';
  readonly #token: string;
  readonly #recordLatency: LatencyRecorder | undefined;
  /** Spliced connections by the id their worker knows them by, until the client's side closes. */
  readonly #spliced = new SlotTable<{ splice: Splice; target: DispatchTarget }>();
  #onEmpty: (() => void) | undefined;

  constructor(settings: TransportSettings) {
    this.#token = settings.token;
    this.#recordLatency = settings.recordLatency;
  }

  dispatch(target: DispatchTarget, client: net.Socket, outcome: DispatchOutcome): void {
    // A client that reset before it was accepted has no address left to pass on.
    const info = storedAddressInfo(client) ?? addressInfoOf(client);
    if (!info || !target.pipePath) {
      outcome.dropped(target, client);
      return;
    }
    client.pause();
    // A reset before the upstream connects must not throw; the destroyed client is noticed on connect.
    if (client.listenerCount('error') === 0) client.on('error', ignoreError);
    const startedAt = this.#recordLatency ? performance.now() : 0;
    const splice = new Splice(client, target.pipePath);
    const { upstream } = splice;
    const onConnectError = (): void => {
      splice.abandon();
      outcome.refused(target, client);
    };
    upstream.once('error', onConnectError);
    upstream.once('connect', () => {
      upstream.off('error', onConnectError);
      const id = client.destroyed ? undefined : this.#spliced.add({ splice, target });
      if (id === undefined) {
        splice.abandon();
        outcome.dropped(target, client);
        return;
      }
      upstream.write(encodePreamble(this.#token, info, client.remoteAddress ?? '', id));
      splice.join();
      client.once('close', () => {
        this.#spliced.delete(id);
        if (this.#spliced.size === 0) this.#onEmpty?.();
      });
      this.#recordLatency?.((performance.now() - startedAt) / 1000);
    });
  }

  /**
   * The worker closed these connections. Their upstream may be paused behind a client that does not
   * read, and so never see the close: what is left of it is bounded now, so it is read in full, and
   * a client that then takes no byte of it for a while, or never closes its side, is cut.
   */
  workerClosed(ids: readonly number[]): void {
    for (const id of ids) {
      const splice = this.#spliced.get(id)?.splice;
      if (!splice || splice.client.destroyed) continue;
      splice.drain();
      this.#sweep ??= setInterval(this.#sweepDraining, 1000).unref();
    }
  }

  /** A worker that exited, stopped or crashed, could not say which connections it closed: all of them. */
  workerExited(target: DispatchTarget): void {
    const ids: number[] = [];
    for (const [id, spliced] of this.#spliced.entries()) if (spliced.target === target) ids.push(id);
    this.workerClosed(ids);
  }

  async close(timeout: number): Promise<void> {
    if (this.#spliced.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeout).unref();
        this.#onEmpty = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    for (const [, { splice }] of this.#spliced.entries()) splice.destroy();
    this.#spliced.clear();
    clearInterval(this.#sweep);
    this.#sweep = undefined;
  }

  #sweep: NodeJS.Timeout | undefined;

  // Each connection's client leaves the table when it closes, so what is left with a finished worker
  // is a client still taking the rest of its reply, or not taking it.
  readonly #sweepDraining = (): void => {
    let draining = 0;
    for (const [, { splice }] of this.#spliced.entries()) {
      if (!splice.draining || splice.client.destroyed) continue;
      if (splice.stalledChecks() < STALL_LIMIT_S) draining++;
      else splice.destroy();
    }
    if (draining === 0) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
    }
  };
}

/** Seconds a client may go without taking a byte, once its worker is done, before it is cut. */
const STALL_LIMIT_S = 5;

function ignoreError(): void {}
