import fs from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connectionBudget } from '../../fd-budget.ts';
import { addressInfoOf, storedAddressInfo } from '../../protocol/address-info.ts';
import { pipePathIn } from '../../protocol/sessions.ts';
import type { Delivery, DeliverySettings, DispatchTarget, LatencyRecorder, Route } from '../delivery.ts';
import { encodePreamble } from './preamble.ts';
import { IdTable } from './id-table.ts';
import { Splice } from './splice.ts';

/**
 * The client's socket and its worker's Unix socket; `countOut` is called once, when either side is
 * done, once the worker has taken the connection.
 */
interface Spliced {
  splice: Splice;
  target: DispatchTarget;
  countOut: (() => void) | undefined;
}

/** A piped connection holds three descriptors: the client's and both ends of the Unix socket. */
const FDS_PER_CONNECTION = 3;
/** Seconds a client may go without taking a byte, once its worker is done, before it is cut. */
const STALL_LIMIT_S = 5;

/**
 * Pipes bytes between the client and the worker over the worker's private Unix socket. Used when
 * TLS ends at the proxy or the runtime cannot move sockets between threads. The main thread holds
 * each connection, so it counts each out itself: when the worker reports it closed, when the client
 * goes, or when the worker exits, whichever comes first.
 */
export class PipeDelivery implements Delivery {
  readonly name = 'pipe';
  readonly readsOnMainThread = true;
  readonly #token: string;
  readonly #recordLatency: LatencyRecorder | undefined;
  readonly #maxWorkers: number;
  readonly #dir: string;
  /** Spliced connections by the id their worker knows them by, until the client's side closes. */
  readonly #spliced = new IdTable<Spliced>();
  #onEmpty: (() => void) | undefined;
  #sweep: NodeJS.Timeout | undefined;

  constructor(settings: DeliverySettings) {
    this.#token = settings.token;
    this.#recordLatency = settings.recordLatency;
    this.#maxWorkers = settings.maxWorkers;
    this.#dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socketnaut-'));
    process.once('exit', this.#removeDir);
  }

  connectionBudget(): number | undefined {
    return connectionBudget(FDS_PER_CONNECTION, this.#maxWorkers);
  }

  /** The directory of every worker's Unix socket. */
  get dir(): string {
    return this.#dir;
  }

  pipePathFor(id: number): string {
    return pipePathIn(this.#dir, id);
  }

  deliver<T extends DispatchTarget>(target: T, client: net.Socket, route: Route<T>): void {
    const { outcome } = route;
    // A client that reset before it was accepted has no address left to pass on.
    const info = route.unix ? undefined : (storedAddressInfo(client) ?? addressInfoOf(client));
    if (!info && !route.unix) {
      outcome.dropped(target, client);
      return;
    }
    client.pause();
    // A reset before the upstream connects must not throw; the destroyed client is noticed on connect.
    if (client.listenerCount('error') === 0) client.on('error', ignoreError);
    const startedAt = this.#recordLatency ? performance.now() : 0;
    const splice = new Splice(client, this.pipePathFor(target.id));
    const { upstream } = splice;
    const onConnectError = (): void => {
      splice.abandon();
      outcome.refused(target, client);
    };
    upstream.once('error', onConnectError);
    upstream.once('connect', () => {
      upstream.off('error', onConnectError);
      // Counted out only once the worker has taken it.
      const spliced: Spliced = { splice, target, countOut: undefined };
      const id = client.destroyed ? undefined : this.#spliced.add(spliced);
      if (id === undefined) {
        splice.abandon();
        outcome.dropped(target, client);
        return;
      }
      upstream.write(encodePreamble(this.#token, info, client.remoteAddress ?? '', id, route.sharedPort));
      splice.awaitAnswer((taken) => {
        if (!taken) {
          this.#forget(id);
          splice.abandon();
          if (client.destroyed) outcome.dropped(target, client);
          else outcome.refused(target, client);
          return;
        }
        spliced.countOut = () => outcome.ended(target, client);
        splice.join();
        outcome.delivered(target, client);
        const onClose = (): void => {
          this.#countOut(spliced);
          this.#forget(id);
        };
        if (!client.closed) client.once('close', onClose);
        else {
          splice.destroy();
          onClose();
        }
        this.#recordLatency?.((performance.now() - startedAt) / 1000);
      });
    });
  }

  #forget(id: number): void {
    this.#spliced.delete(id);
    if (this.#spliced.size === 0) this.#onEmpty?.();
  }

  /**
   * The worker closed these connections. Their upstream may be paused behind a client that does not
   * read, and so never see the close: what is left of it is bounded now, so it is read in full, and
   * a client that then takes no byte of it for a while, or never closes its side, is cut.
   */
  workerClosed(_target: DispatchTarget, ids: readonly number[]): void {
    for (const id of ids) {
      const spliced = this.#spliced.get(id);
      // One not yet taken is refused when its worker goes, and offered to another.
      if (!spliced?.splice.joined) continue;
      this.#countOut(spliced);
      if (spliced.splice.client.destroyed) continue;
      spliced.splice.finish();
      this.#sweep ??= setInterval(this.#sweepFinishing, 1000).unref();
    }
  }

  /** A worker that exited, stopped or crashed, could not say which connections it closed: all of them. */
  workerExited(target: DispatchTarget): void {
    const ids: number[] = [];
    for (const [id, spliced] of this.#spliced.entries()) if (spliced.target === target) ids.push(id);
    this.workerClosed(target, ids);
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
    this.#removeDir();
    process.off('exit', this.#removeDir);
  }

  #countOut(spliced: Spliced): void {
    const { countOut } = spliced;
    spliced.countOut = undefined;
    countOut?.();
  }

  // Each connection's client leaves the table when it closes, so what is left with a finished worker
  // is a client still taking the rest of its reply, or not taking it.
  readonly #sweepFinishing = (): void => {
    let finishing = 0;
    for (const [, { splice }] of this.#spliced.entries()) {
      if (!splice.finishing || splice.client.destroyed) continue;
      if (splice.stalledChecks() < STALL_LIMIT_S) finishing++;
      else splice.destroy();
    }
    if (finishing === 0) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
    }
  };

  readonly #removeDir = (): void => {
    fs.rmSync(this.#dir, { recursive: true, force: true });
  };
}

function ignoreError(): void {}
