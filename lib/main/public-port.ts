import type net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from 'streams-logger';
import { createBalancer } from '../balancers/index.ts';
import type { ResolvedOptions } from '../options.ts';
import { ProxyHeaderGate } from '../proxy-protocol/gate.ts';
import type { Intake } from '../transports/index.ts';
import type { ReuseportSettings } from '../transports/reuseport/main.ts';
import { Dispatcher } from './dispatcher.ts';
import type { ConnectionLedger } from './ledger.ts';
import type { WorkerPool } from './pool.ts';
import type { ConnectionCounters } from './stats.ts';
import { guardHandshakes } from './tls-handshakes.ts';

export interface PublicPortSettings {
  options: ResolvedOptions;
  ledger: ConnectionLedger;
  pool: WorkerPool;
  terminatesTls: boolean;
  log: Logger;
  /** An error of the server that is not a failed accept, when the app has no 'error' listener of its own. */
  onError: (err: Error) => void;
}

/**
 * The public port: the user's server, whose connections the main thread accepts (all of them, or
 * with reuseport those on listeners no worker holds) and dispatches. Until a transport is open the
 * dispatcher queues what arrives.
 */
export class PublicPort {
  readonly dispatcher: Dispatcher;
  readonly #server: net.Server;
  readonly #settings: PublicPortSettings;

  constructor(settings: PublicPortSettings) {
    const { options, ledger, pool, terminatesTls, log } = settings;
    this.#settings = settings;
    this.#server = options.server;
    this.dispatcher = new Dispatcher({
      sharedPort: 0,
      unix: false,
      candidates: () => pool.ready,
      ledger,
      pool,
      balancer: createBalancer(options.balance, options.perIpPrefix),
      gate: options.proxyProtocol && new ProxyHeaderGate(options.proxyProtocol),
      queueLimit: options.queueLimit,
      queueTimeout: options.queueTimeout,
      overloadResponse: options.overloadResponse,
      log,
    });
    // Hand-off needs sockets nothing has read from, and the pipe transport reads only once connected.
    const server = this.#server;
    if (terminatesTls) guardHandshakes(server as tls.Server, this.dispatcher, options.handshakeTimeout);
    else {
      (server as net.Server & { pauseOnConnect: boolean }).pauseOnConnect = true;
      server.on('connection', this.dispatcher.onConnection);
    }
    server.on('error', this.#onError);
  }

  /** The public port's counts, with what workers that accept connections themselves did. */
  counters(intake: Intake | undefined): ConnectionCounters {
    const counters = this.dispatcher.counters;
    const own = intake?.ownCounters();
    if (!own || own.accepted === 0) return counters;
    return {
      ...counters,
      accepted: counters.accepted + own.accepted,
      refused: counters.refused + own.refused,
      dispatched: counters.dispatched + own.accepted - own.refused,
      forwarded: own.forwarded,
    };
  }

  /** What the reuseport intake needs of the public port, should it be chosen. */
  reuseportSettings(maxWorkers: number): ReuseportSettings {
    const { options, ledger, log } = this.#settings;
    const { maxConnectionsPerIp, perIpPrefix, balance, proxyProtocol } = options;
    return {
      server: this.#server,
      accept: this.dispatcher.onConnection,
      acceptFailed: (err) => this.dispatcher.acceptFailed(err),
      limits: () => ({ maxConnections: ledger.maxConnections, maxConnectionsPerIp, perIpPrefix }),
      balance,
      trusted: proxyProtocol?.trusted,
      maxWorkers,
      log,
    };
  }

  /**
   * Stops accepting. The connection listeners stay: a TLS handshake under way now still ends in
   * 'secureConnection', and the dispatcher closes what arrives from now on.
   */
  close(): void {
    this.#server.off('error', this.#onError);
    this.#server.close();
    this.dispatcher.close();
  }

  readonly #onError = (err: NodeJS.ErrnoException): void => {
    if (err.syscall === 'accept') this.dispatcher.acceptFailed(err);
    else if (this.#server.listenerCount('error') === 1) this.#settings.onError(err);
  };
}
