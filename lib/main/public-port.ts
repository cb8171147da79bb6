import type net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from 'streams-logger';
import { createBalancer } from '../balancers/index.ts';
import type { ResolvedOptions } from '../options.ts';
import type { ListenFailure, PublicListen } from '../protocol/messages.ts';
import { ProxyHeaderGate } from '../proxy-protocol/gate.ts';
import type { Intake } from '../transports/index.ts';
import type { ReuseportSettings } from '../transports/reuseport/main.ts';
import { Dispatcher } from './dispatcher.ts';
import type { ConnectionLedger } from './ledger.ts';
import type { WorkerPool } from './pool.ts';
import { SessionAffinity } from './session-affinity.ts';
import { listenFailure } from './shared-ports.ts';
import type { ConnectionCounters } from './stats.ts';
import { guardHandshakes } from './tls-handshakes.ts';
import type { WorkerRecord } from './worker-record.ts';

export interface PublicPortSettings {
  options: ResolvedOptions;
  ledger: ConnectionLedger;
  pool: WorkerPool;
  terminatesTls: boolean;
  log: Logger;
  /** An error of the server that is not a failed accept, when the app has no 'error' listener of its own. */
  onError: (err: Error) => void;
  /** Binds the public port where the workers' apps ask; undefined when the server's owner bound it. */
  binder: PublicBinder | undefined;
}

/**
 * Binds the public port where a worker's app asks (the launcher's, see ../launcher/launch.ts): called
 * once for each address asked for, the first time. Resolves to the server now listening there: the
 * public server, or another one whose connections are the public port's too. Rejects with why it
 * cannot; for the first address, that ends the start (nothing listens).
 */
export type PublicBinder = (listen: PublicListen) => Promise<net.Server>;

interface Bind {
  bound: Promise<net.Server>;
  /** The public server's own: its failure is the launcher's. */
  first: boolean;
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
  /** The binds asked for, by address: the first is the public server's. */
  readonly #bound = new Map<string, Bind>();
  /** Servers bound on other addresses the apps asked for, taking the public port's connections too. */
  readonly #others: net.Server[] = [];
  #closed = false;
  /** Whether the public server was bound on IPv6 only, the app asking. */
  #ipv6Only = false;

  constructor(settings: PublicPortSettings) {
    const { options, ledger, pool, log } = settings;
    this.#settings = settings;
    this.#server = options.server;
    this.dispatcher = new Dispatcher({
      sharedPort: 0,
      unix: false,
      candidates: () => pool.ready,
      ledger,
      pool,
      balancer: createBalancer(options.balance, options.perIpPrefix, options.trustProxy),
      // ip-hash sends a client's connections to one worker already.
      affinity: options.balance === 'ip-hash' ? undefined : new SessionAffinity(),
      gate: options.proxyProtocol && new ProxyHeaderGate(options.proxyProtocol),
      queueLimit: options.queueLimit,
      queueTimeout: options.queueTimeout,
      overloadResponse: options.overloadResponse,
      log,
    });
    this.#accept(this.#server);
  }

  // Hand-off needs sockets nothing has read from, and the pipe transport reads only once connected.
  #accept(server: net.Server): void {
    const { options, terminatesTls } = this.#settings;
    if (terminatesTls) guardHandshakes(server as tls.Server, this.dispatcher, options.handshakeTimeout);
    else {
      (server as net.Server & { pauseOnConnect: boolean }).pauseOnConnect = true;
      server.on('connection', this.dispatcher.onConnection);
    }
    server.on('error', this.#onError);
  }

  /**
   * A worker's app listens on the public port: it is answered with the address bound, once bound. A
   * failed bind of another address than the first is its server's 'error', as without socketnaut.
   */
  workerListens(record: WorkerRecord, request: number, listen: PublicListen): void {
    const answer = (address: net.AddressInfo | string | null, failure?: ListenFailure): void =>
      record.send({ type: 'public-address', request, address, failure });
    const { binder } = this.#settings;
    if (!binder) {
      answer(this.#server.address());
      return;
    }
    const key = `${listen.host ?? ''} ${listen.ipv6Only === true}`;
    const bind = this.#bound.get(key) ?? this.#bind(key, listen, binder);
    bind.bound.then(
      (server) => answer(server.address()),
      (err: NodeJS.ErrnoException) => {
        if (!bind.first) answer(null, listenFailure(err));
      },
    );
  }

  #bind(key: string, listen: PublicListen, binder: PublicBinder): Bind {
    const first = this.#bound.size === 0;
    // Bound now, as asked, unless its owner bound it already (the launcher's --host).
    if (first && !this.#server.listening) this.#ipv6Only = listen.ipv6Only === true;
    const bound = binder(listen).then((server) => {
      if (server !== this.#server) this.#acceptToo(server);
      return server;
    });
    const bind = { bound, first };
    this.#bound.set(key, bind);
    bound.catch((err: Error) => {
      // Nothing listens: the launcher stops, and no worker is answered.
      if (first) this.#settings.onError(err);
      // A later listen() tries again, as it would without socketnaut.
      else this.#bound.delete(key);
    });
    return bind;
  }

  #acceptToo(server: net.Server): void {
    if (this.#closed) {
      server.close();
      return;
    }
    this.#others.push(server);
    this.#accept(server);
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
      ipv6Only: () => this.#ipv6Only,
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
    this.#closed = true;
    for (const server of [this.#server, ...this.#others.splice(0)]) {
      server.off('error', this.#onError);
      server.close();
    }
    this.dispatcher.close();
  }

  readonly #onError = (err: NodeJS.ErrnoException): void => {
    if (err.syscall === 'accept') this.dispatcher.acceptFailed(err);
    else if (this.#server.listenerCount('error') === 1) this.#settings.onError(err);
  };
}
