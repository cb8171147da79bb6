import net from 'node:net';
import type { Logger } from 'streams-logger';
import { createBalancer, type BalancerName } from '../balancers/index.ts';
import type { FromWorker, ListenFailure, ListenRequest, ToWorker } from '../protocol/messages.ts';
import type { ProxyHeaderGate } from '../proxy-protocol/gate.ts';
import { createTransport, type Transport, type TransportSettings } from '../transports/index.ts';
import { Dispatcher } from './dispatcher.ts';
import type { ConnectionLedger } from './ledger.ts';
import type { WorkerPool } from './pool.ts';
import type { ResolvedOptions } from '../options.ts';
import type { ReuseportSettings } from '../transports/reuseport/main.ts';
import type { ConnectionCounters, ListenerStats } from './stats.ts';
import type { WorkerHandle } from './worker-handle.ts';

export interface ListenersSettings {
  ledger: ConnectionLedger;
  pool: WorkerPool;
  balance: BalancerName;
  /** IPv6 clients are one client per network of this many bits, for ip-hash. */
  perIpPrefix: number;
  queueLimit: number;
  queueTimeout: number;
  /** For the public port only: the PROXY-header gate and the bytes for a connection no worker takes. */
  gate: ProxyHeaderGate | undefined;
  overloadResponse: string | Buffer | undefined;
  log: Logger;
}

/** One of the app's other servers, opened once here for every worker whose server listens there. */
interface SharedListener {
  readonly id: number;
  readonly key: string;
  readonly server: net.Server;
  readonly dispatcher: Dispatcher;
  /** Unix-socket connections cannot move to a thread: they are piped. */
  readonly piped: boolean;
  readonly workers: Set<WorkerHandle>;
  /** Workers waiting for the bind to finish. */
  waiting: { handle: WorkerHandle; request: number }[];
}

/**
 * Every port the proxy listens on, each with its dispatcher: the public one, and those the app's
 * other servers asked for (a metrics or admin port), shared by every worker that listens there as
 * node:cluster shares them. Also the transports the dispatchers use.
 */
export class Listeners {
  readonly public: Dispatcher;
  readonly #settings: ListenersSettings;
  readonly #byKey = new Map<string, SharedListener>();
  readonly #byId = new Map<number, SharedListener>();
  #nextId = 1;
  #transportSettings: TransportSettings | undefined;
  #transport: Transport | undefined;
  /** Pipes the connections of Unix-socket listeners when the transport is hand-off. */
  #pipe: Transport | undefined;
  #closed = false;

  constructor(settings: ListenersSettings) {
    this.#settings = settings;
    this.public = this.#dispatcher(0, false, () => settings.pool.ready, settings.gate, settings.overloadResponse);
    // A transport whose workers accept connections themselves follows their lives.
    const { pool } = settings;
    pool.on('worker-ready', (handle: WorkerHandle) => {
      handle.account.own = this.#transport?.ownConnections?.(handle);
      this.#transport?.workerServing?.(handle);
    });
    pool.on('worker-resumed', (handle: WorkerHandle) => this.#transport?.workerServing?.(handle));
    pool.on('worker-stalled', (handle: WorkerHandle) => this.#transport?.workerResting?.(handle, false));
    pool.on('worker-retiring', (handle: WorkerHandle) => this.#transport?.workerResting?.(handle, true));
    pool.on('listener-returned', (handle: WorkerHandle, server: net.Server) =>
      this.#transport?.listenerReturned?.(handle, server),
    );
  }

  /** What the reuseport transport needs of the public port, should it be chosen. */
  reuseportSettings(
    server: net.Server,
    options: Pick<ResolvedOptions, 'maxConnectionsPerIp' | 'perIpPrefix' | 'balance' | 'proxyProtocol'>,
  ): ReuseportSettings {
    const { ledger, log } = this.#settings;
    return {
      server,
      accept: this.public.onConnection,
      acceptFailed: (err) => this.public.acceptFailed(err),
      limits: () => ({
        maxConnections: ledger.maxConnections,
        maxConnectionsPerIp: options.maxConnectionsPerIp,
        perIpPrefix: options.perIpPrefix,
      }),
      balance: options.balance,
      trusted: options.proxyProtocol?.trusted,
      log,
    };
  }

  /** The public port's counts, with what workers that accept connections themselves did. */
  get publicCounters(): ConnectionCounters {
    const own = this.#transport?.counters?.();
    const counters = this.public.counters;
    if (!own) return counters;
    const admitted = own.accepted - own.refused;
    return {
      ...counters,
      accepted: counters.accepted + own.accepted,
      refused: counters.refused + own.refused,
      dispatched: counters.dispatched + admitted,
      forwarded: own.forwarded,
    };
  }

  get transport(): Transport | undefined {
    return this.#transport;
  }

  useTransport(transport: Transport, settings: TransportSettings): void {
    this.#transport = transport;
    this.#transportSettings = settings;
    // Where workers admit connections themselves, the main thread counts in the same memory.
    if (transport.sharedCounts) this.#settings.ledger.useCounts(transport.sharedCounts);
    this.public.useTransport(transport);
    for (const listener of this.#byId.values()) listener.dispatcher.useTransport(this.#transportFor(listener.piped));
  }

  /** A worker's server asks to listen: the bind is made once, and every worker asking shares it. */
  listen(handle: WorkerHandle, request: number, listen: ListenRequest): void {
    if (this.#closed) return;
    let listener = this.#byKey.get(listen.key);
    if (!listener) listener = this.#open(listen);
    if (listener.server.listening) this.#joined(listener, handle, request);
    else listener.waiting.push({ handle, request });
  }

  unlisten(handle: WorkerHandle, id: number): void {
    const listener = this.#byId.get(id);
    if (listener) this.#leave(listener, handle);
  }

  /** A worker began serving: connections waiting for one, on every port, go now. */
  workerReady(): void {
    this.public.workerReady();
    for (const listener of this.#byId.values()) listener.dispatcher.workerReady();
  }

  workerClosed(handle: WorkerHandle, report: Extract<FromWorker, { type: 'closed' }>): void {
    this.#settings.ledger.ended(handle.account, report.count, report.peers);
    if (!report.pipeIds) return;
    this.#transport?.workerClosed?.(handle, report.pipeIds);
    this.#pipe?.workerClosed?.(handle, report.pipeIds);
  }

  /** The transports count out what they carry for the worker first; the ledger then, whatever else it held. */
  workerExited(handle: WorkerHandle): void {
    this.#transport?.workerExited?.(handle);
    this.#pipe?.workerExited?.(handle);
    this.#settings.ledger.workerExited(handle.account);
    for (const listener of [...this.#byId.values()]) this.#leave(listener, handle);
    this.public.workerExited();
  }

  /** Stops accepting on every port. */
  close(): void {
    this.#closed = true;
    this.#transport?.stopAccepting?.();
    this.public.close();
    for (const listener of [...this.#byId.values()]) this.#closeListener(listener);
  }

  /** Once the workers are gone: lets what the transports still carry finish, for up to `timeout` ms. */
  async closeTransports(timeout: number): Promise<void> {
    await Promise.all([this.#transport?.close(timeout), this.#pipe?.close(timeout)]);
  }

  stats(): ListenerStats[] {
    return [...this.#byId.values()].map((listener) => ({
      address: listener.server.address(),
      workers: listener.workers.size,
      ...listener.dispatcher.counters,
    }));
  }

  #dispatcher(
    listener: number,
    unix: boolean,
    candidates: () => readonly WorkerHandle[],
    gate: ProxyHeaderGate | undefined,
    overloadResponse: string | Buffer | undefined,
  ): Dispatcher {
    const { ledger, pool, balance, queueLimit, queueTimeout, log } = this.#settings;
    const balancer = createBalancer(balance, this.#settings.perIpPrefix);
    return new Dispatcher({
      listener,
      unix,
      candidates,
      ledger,
      pool,
      balancer,
      gate,
      queueLimit,
      queueTimeout,
      overloadResponse,
      log,
    });
  }

  #transportFor(piped: boolean): Transport {
    if (!piped || this.#transport!.name === 'pipe') return this.#transport!;
    this.#pipe ??= createTransport('pipe', this.#transportSettings!);
    return this.#pipe;
  }

  #open(listen: ListenRequest): SharedListener {
    const id = this.#nextId++;
    const workers = new Set<WorkerHandle>();
    const candidates = (): WorkerHandle[] => this.#settings.pool.ready.filter((handle) => workers.has(handle));
    const piped = listen.path !== undefined;
    const listener: SharedListener = {
      id,
      key: listen.key,
      server: net.createServer({ pauseOnConnect: true }),
      dispatcher: this.#dispatcher(id, piped, candidates, undefined, undefined),
      piped,
      workers,
      waiting: [],
    };
    if (this.#transport) listener.dispatcher.useTransport(this.#transportFor(piped));
    this.#byKey.set(listen.key, listener);
    this.#byId.set(id, listener);
    const { server } = listener;
    server.on('connection', listener.dispatcher.onConnection);
    server.once('listening', () => {
      this.#settings.log.debug(`Listening on ${describe(server.address())} for the workers' servers`);
      for (const { handle, request } of listener.waiting.splice(0)) this.#joined(listener, handle, request);
    });
    server.on('error', (err: NodeJS.ErrnoException) => {
      // Once bound, an error is a failed accept (out of descriptors, say), which libuv has shed.
      if (server.listening) {
        listener.dispatcher.acceptFailed(err);
        return;
      }
      // A later listen() tries again, as it would without socketnaut.
      this.#byKey.delete(listen.key);
      this.#byId.delete(id);
      const failure = listenFailure(err);
      for (const { handle, request } of listener.waiting.splice(0)) this.#reply(handle, request, id, null, failure);
    });
    const { port, host, path, backlog, ipv6Only } = listen;
    server.listen(path !== undefined ? { path, backlog } : { port, host, backlog, ipv6Only });
    return listener;
  }

  #joined(listener: SharedListener, handle: WorkerHandle, request: number): void {
    if (handle.state === 'exited') return;
    listener.workers.add(handle);
    const pipePath =
      listener.piped && this.#transport?.name !== 'pipe' ? this.#transportFor(true).pipePathFor(handle.id) : undefined;
    this.#reply(handle, request, listener.id, listener.server.address(), undefined, pipePath);
    listener.dispatcher.workerReady();
  }

  #reply(
    handle: WorkerHandle,
    request: number,
    listener: number,
    address: net.AddressInfo | string | null,
    failure?: ListenFailure,
    pipePath?: string,
  ): void {
    const message: ToWorker = { type: 'listen-result', request, listener, address, failure, pipePath };
    if (handle.state !== 'exited') handle.port.postMessage(message);
  }

  // As a shared handle in node:cluster, the port closes once no worker listens there.
  #leave(listener: SharedListener, handle: WorkerHandle): void {
    listener.workers.delete(handle);
    listener.waiting = listener.waiting.filter((waiting) => waiting.handle !== handle);
    if (listener.workers.size === 0 && listener.waiting.length === 0 && listener.server.listening)
      this.#closeListener(listener);
  }

  #closeListener(listener: SharedListener): void {
    this.#byKey.delete(listener.key);
    this.#byId.delete(listener.id);
    listener.server.close();
    listener.dispatcher.close();
  }
}

function listenFailure(err: NodeJS.ErrnoException & { address?: string; port?: number }): ListenFailure {
  return {
    message: err.message,
    code: err.code,
    errno: err.errno,
    syscall: err.syscall,
    address: err.address,
    port: err.port,
  };
}

function describe(address: net.AddressInfo | string | null): string {
  if (address === null || typeof address === 'string') return String(address);
  return `${address.address}:${address.port}`;
}
