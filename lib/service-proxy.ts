import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'streams-logger';
import { createBalancer, type Balancer } from './balancers/index.ts';
import { ConnectionQueue } from './connection-queue.ts';
import { ERR_HANDOFF_UNSUPPORTED, ERR_INVALID_OPTION, ERR_WORKER_BOOTSTRAP } from './errors.ts';
import { Admission } from './admission.ts';
import { ProxyHeaderGate } from './proxy-header-gate.ts';
import { openFileLimit } from './fd-limit.ts';
import { collectStats, type ConnectionCounters, type ProxyStats } from './stats.ts';
import { createLogger, Level } from './logging.ts';
import type { ConcreteTransportName } from './messages.ts';
import { drainTimeout, resolveOptions, type ResolvedOptions, type ServiceProxyOptions } from './options.ts';
import { createTransport, probeHandoff, type DispatchOutcome, type Transport } from './transports/index.ts';
import type { WorkerHandle } from './worker-handle.ts';
import { WorkerPool } from './worker-pool.ts';
import { loadTls } from './builtins.ts';

export interface ShutdownOptions {
  /** How long open connections may take to finish before their workers are stopped, in milliseconds. */
  timeout?: number;
}

export type ReloadOptions = ShutdownOptions;

const TURN_AWAY_LINGER_MS = 1000;

const FDS_PER_PIPED_CONNECTION = 3;
const RESERVED_FDS = 64;
const FDS_PER_WORKER = 16;
const MIN_DEFAULT_CONNECTIONS = 16;

// A connection waiting in the queue may be reset by its client; that must not throw on the main thread.
function ignoreError(): void {}

/**
 * Owns the public server on the main thread and moves each accepted connection into one of a pool
 * of worker threads. Emits 'ready', 'worker-online' (agent), 'worker-exit' (agent, code, reason),
 * 'error', and with measureHandoffLatency, 'handoff-latency' (seconds).
 */
export class ServiceProxy extends EventEmitter {
  readonly server: net.Server;
  readonly log: Logger;
  readonly minWorkers: number;
  readonly maxWorkers: number;
  readonly #options: ResolvedOptions;
  readonly #pool: WorkerPool;
  readonly #balancer: Balancer;
  readonly #queue: ConnectionQueue;
  readonly #admission: Admission;
  readonly #counters: ConnectionCounters = {
    accepted: 0,
    dispatched: 0,
    redispatched: 0,
    refused: 0,
    queued: 0,
    expired: 0,
    acceptErrors: 0,
    proxyHeaderRejected: 0,
  };
  readonly #proxyHeaderGate: ProxyHeaderGate | undefined;
  /** The workers that could not take a connection, kept only for connections that met one. */
  readonly #refusedBy = new WeakMap<net.Socket, WorkerHandle[]>();
  #reloads = 0;
  readonly #token = randomBytes(16).toString('hex');
  readonly #ticketKeys = randomBytes(48);
  readonly #connectionEvent: 'connection' | 'secureConnection';
  #transport: Transport | undefined;
  #pipeDir: string | undefined;
  #reaper: NodeJS.Timeout | undefined;
  #readyEmitted = false;
  #bootstrapFailureReported = false;
  #shutdown: Promise<PromiseSettledResult<number>[]> | undefined;
  #reloading: Promise<void> | undefined;

  constructor(options: ServiceProxyOptions) {
    super();
    const resolved = resolveOptions(options);
    const terminatesTls = resolved.server instanceof loadTls().Server;
    if (terminatesTls && resolved.transport === 'handoff') {
      throw new ERR_INVALID_OPTION('transport', "'pipe' or 'auto' when the server is a tls.Server", "'handoff'");
    }
    if (terminatesTls && resolved.proxyProtocol) {
      throw new ERR_INVALID_OPTION('proxyProtocol', 'false when the server is a tls.Server, whose TLS handshake would meet the header first', 'true');
    }
    this.#options = resolved;
    this.server = resolved.server;
    this.minWorkers = resolved.minWorkers;
    this.maxWorkers = resolved.maxWorkers;
    this.log = createLogger('ServiceProxy');
    this.#balancer = createBalancer(resolved.balance);
    this.#admission = new Admission(resolved);
    this.#proxyHeaderGate = resolved.proxyProtocol && new ProxyHeaderGate(resolved.proxyProtocol);
    this.#queue = new ConnectionQueue(resolved.queueLimit, resolved.queueTimeout, {
      expired: (socket) => {
        this.#counters.expired++;
        this.log.warn(`A connection waited ${resolved.queueTimeout} ms for a worker and was closed`);
        this.#turnAway(socket);
      },
      abandoned: (socket) => this.#turnAway(socket, false),
    });
    this.#pool = new WorkerPool({
      minWorkers: resolved.minWorkers,
      maxWorkers: resolved.maxWorkers,
      workerOptions: resolved.workerOptions,
      workerStartTimeout: resolved.workerStartTimeout,
      log: this.log,
      boot: (id) => ({
        socketnautWorker: 1,
        moduleURL: resolved.workerURL.href,
        transport: this.#transport!.name,
        pipePath: this.#pipeDir && path.join(this.#pipeDir, `${id}.sock`),
        token: this.#token,
        publicAddress: this.server.address(),
        logLevel: this.log.level,
        reportAddresses: this.#admission.tracksAddresses,
        serverDefaults: resolved.serverDefaults,
        ticketKeys: this.#ticketKeys,
        proxyHeaderTimeout: this.#transport!.name === 'handoff' ? resolved.proxyProtocol?.timeout : undefined,
        userWorkerData: undefined,
      }),
    });
    this.#pool.on('worker-ready', (handle: WorkerHandle) => this.#onWorkerReady(handle));
    this.#pool.on('worker-exit', (handle: WorkerHandle, code: number, reason: string) => this.#onWorkerExit(handle, code, reason));
    this.#pool.on('bootstrap-failure', (handle: WorkerHandle) => this.#onBootstrapFailure(handle));
    this.#pool.on('proxy-header-rejected', () => this.#counters.proxyHeaderRejected++);
    this.#pool.on('connections-closed', (count: number, addresses?: string[], pipeIds?: number[]) => {
      if (this.#admission.enabled) this.#admission.release(count, addresses);
      if (pipeIds) this.#transport?.workerClosed?.(pipeIds);
    });

    // Hand-off needs sockets nothing has read from, and the pipe transport reads only once connected.
    if (!terminatesTls) (this.server as net.Server & { pauseOnConnect: boolean }).pauseOnConnect = true;
    this.#connectionEvent = terminatesTls ? 'secureConnection' : 'connection';
    this.server.on(this.#connectionEvent, this.#onConnection);
    this.server.on('error', this.#onServerError);
    this.#start(terminatesTls).catch((err: unknown) => this.#reportError(err as Error));
  }

  /** One entry per live worker, with its `worker` and its open `connections`. */
  get agents(): WorkerHandle[] {
    return [...this.#pool.handles];
  }

  /** The transport in use, once chosen. */
  get transport(): ConcreteTransportName | undefined {
    return this.#transport?.name;
  }

  /**
   * A snapshot of the pool and of what the proxy has done with the connections it accepted. Costs
   * nothing until called: each worker's event-loop use is read from the main thread, its heap asked for.
   * Event-loop use covers the time since the previous call that passed the same `since` name, so that
   * two readers (a metrics scrape and a status line, say) do not shorten each other's intervals.
   */
  stats(since = 'stats'): Promise<ProxyStats> {
    return collectStats(since, {
      transport: this.#transport?.name,
      counters: this.#counters,
      queued: this.#queue.length,
      restarts: this.#pool.restarts,
      reloads: this.#reloads,
      workers: this.agents,
    });
  }

  async #start(terminatesTls: boolean): Promise<void> {
    const name = await this.#chooseTransport(terminatesTls);
    if (!name || this.#shutdown) return;
    if (name === 'pipe') {
      this.#pipeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'socketnaut-'));
      process.once('exit', this.#removePipeDir);
      this.#limitPipeConnections();
    }
    const recordLatency = this.#options.measureHandoffLatency ? (seconds: number) => this.emit('handoff-latency', seconds) : undefined;
    this.#transport = createTransport(name, { token: this.#token, recordLatency, sendPeer: this.#admission.tracksAddresses });
    if (recordLatency && name === 'handoff') this.#pool.on('handoff-latency', recordLatency);
    this.log.info(`Transport: ${name}; workers: ${this.minWorkers} to ${this.maxWorkers}`);
    this.#reaper = setInterval(() => this.#reapIdleWorkers(), this.#options.workersCheckingInterval).unref();
    this.#pool.replenish();
    if (this.#pool.size === 0 && this.#queue.length > 0) this.#pool.grow();
    this.#maybeEmitReady();
  }

  async #chooseTransport(terminatesTls: boolean): Promise<ConcreteTransportName | undefined> {
    const { transport: requested, proxyProtocol, balance } = this.#options;
    if (requested === 'pipe' || (requested === 'auto' && terminatesTls)) return 'pipe';
    // Sticking to a client behind a balancer needs the PROXY header read before the worker is
    // chosen, and only the pipe transport may read on the main thread.
    const stickyBehindBalancer = proxyProtocol !== undefined && balance === 'ip-hash';
    if (requested === 'auto' && stickyBehindBalancer) {
      this.log.info('PROXY protocol with ip-hash: using the pipe transport, so that ip-hash sees the real client');
      return 'pipe';
    }
    if (stickyBehindBalancer) this.log.warn("With transport 'handoff', ip-hash balances on the PROXY header's sender, not on the client it names");
    const unsupported = await probeHandoff();
    if (!unsupported) return 'handoff';
    if (requested === 'auto') {
      this.log.debug(`Socket hand-off is unavailable (${unsupported}); using the pipe transport`);
      return 'pipe';
    }
    this.#reportError(new ERR_HANDOFF_UNSUPPORTED(`this runtime cannot move sockets between threads (${unsupported})`));
    return undefined;
  }

  // A piped connection holds three descriptors. Out of descriptors, accepting fails in a way libuv
  // cannot shed when several threads share the process (the listener then wakes the loop forever),
  // so the pipe transport keeps below the limit instead of reaching it.
  #limitPipeConnections(): void {
    const limit = openFileLimit();
    if (limit === undefined) return;
    const reserved = RESERVED_FDS + FDS_PER_WORKER * this.maxWorkers;
    const maxConnections = Math.max(MIN_DEFAULT_CONNECTIONS, Math.floor((limit - reserved) / FDS_PER_PIPED_CONNECTION));
    // What was accepted before the transport was chosen is all still waiting in the queue.
    this.#admission.defaultMaxConnections(maxConnections, this.#queue.length);
    this.log.debug(`Pipe transport: at most ${this.#admission.maxConnections} connections at once (open-file limit ${limit})`);
  }

  readonly #onConnection = (socket: net.Socket): void => {
    this.#counters.accepted++;
    if (this.#shutdown) {
      socket.destroy();
      return;
    }
    const distrust = this.#proxyHeaderGate?.distrust(socket);
    if (distrust) {
      this.#rejectProxyHeader(socket, distrust);
      return;
    }
    if (this.#admission.enabled) {
      const limit = this.#admission.admit(socket);
      if (limit) {
        this.#counters.refused++;
        if (this.log.level >= Level.DEBUG) this.log.debug(`Refused a connection from ${socket.remoteAddress}: ${limit} reached`);
        socket.destroy();
        return;
      }
    }
    this.#prepare(socket);
  };

  /** With the pipe transport, a PROXY header is read here, before a worker is chosen. */
  #prepare(socket: net.Socket): void {
    const gate = this.#proxyHeaderGate;
    if (!gate || this.#transport?.name !== 'pipe') {
      this.#dispatch(socket);
      return;
    }
    gate.read(socket, (rejection) => {
      if (rejection === undefined) {
        this.#dispatch(socket);
        return;
      }
      this.#turnAway(socket, false);
      this.#rejectProxyHeader(socket, rejection);
    });
  }

  #rejectProxyHeader(socket: net.Socket, reason: string): void {
    this.#counters.proxyHeaderRejected++;
    if (this.log.level >= Level.DEBUG) this.log.debug(`Rejected a connection from ${socket.remoteAddress}: ${reason}`);
    socket.destroy();
  }

  // Accepting can fail while the process is out of file descriptors. libuv then sheds the pending
  // connection itself and keeps accepting; all that is left to do here is not to crash.
  readonly #onServerError = (err: NodeJS.ErrnoException): void => {
    if (err.syscall === 'accept') {
      if (this.#counters.acceptErrors++ % 1000 === 0) this.log.warn(`Accepting a connection failed: ${err.message}`);
      return;
    }
    if (this.server.listenerCount('error') === 1) this.#reportError(err);
  };

  /** Closes a connection no worker will take, counting it out and, if `explain`, telling HTTP clients why. */
  #turnAway(socket: net.Socket, explain = true): void {
    if (this.#admission.enabled) this.#admission.release(1, this.#admission.tracksAddresses ? [socket.remoteAddress ?? ''] : undefined);
    const response = this.#options.overloadResponse;
    if (!explain || response === undefined || socket.destroyed) {
      socket.destroy();
      return;
    }
    // Reading what the client sent lets the close be a FIN after the response, not a reset.
    socket.resume();
    socket.end(response);
    setTimeout(() => socket.destroy(), TURN_AWAY_LINGER_MS).unref();
  }

  #dispatch(socket: net.Socket): void {
    if (socket.destroyed || this.#shutdown) {
      this.#turnAway(socket, !socket.destroyed);
      return;
    }
    const transport = this.#transport;
    const ready = this.#pool.ready;
    const refusedBy = this.#refusedBy.get(socket);
    const candidates = refusedBy ? ready.filter((handle) => !refusedBy.includes(handle)) : ready;
    const handle = transport && this.#balancer.pick(candidates, socket);
    if (!handle) {
      this.#enqueue(socket);
      return;
    }
    if (handle.connections > 0 && this.#pool.size < this.maxWorkers) this.#growIfAllBusy();
    handle.connections++;
    handle.totalConnections++;
    if (this.#admission.tracksAddresses) handle.addPeer(socket.remoteAddress ?? '');
    this.#counters.dispatched++;
    transport.dispatch(handle, socket, this.#dispatchOutcome);
  }

  readonly #dispatchOutcome: DispatchOutcome = {
    refused: (target, socket) => {
      const handle = target as WorkerHandle;
      this.#forget(handle, socket);
      this.#counters.redispatched++;
      this.log.debug(`Worker ${handle.threadId} refused a connection; offering it to another worker`);
      this.#refusedBy.set(socket, [...(this.#refusedBy.get(socket) ?? []), handle]);
      this.#dispatch(socket);
    },
    dropped: (target, socket) => {
      this.#forget(target as WorkerHandle, socket);
      this.#turnAway(socket, false);
    },
  };

  /** Counts out of `handle` a connection that never reached it. */
  #forget(handle: WorkerHandle, socket: net.Socket): void {
    if (this.#admission.tracksAddresses) handle.removePeers([socket.remoteAddress ?? '']);
    this.#pool.connectionsEnded(handle, 1);
  }

  #enqueue(socket: net.Socket): void {
    if (this.#transport && this.#pool.starting === 0 && !this.#pool.backingOff) this.#pool.grow();
    if (socket.listenerCount('error') === 0) socket.on('error', ignoreError);
    if (this.#queue.push(socket)) {
      this.#counters.queued++;
      return;
    }
    this.#counters.expired++;
    this.log.warn(`The connection queue is full (${this.#options.queueLimit}); closing a new connection`);
    this.#turnAway(socket);
  }

  #growIfAllBusy(): void {
    if (this.#pool.starting > 0) return;
    for (const handle of this.#pool.ready) if (handle.connections === 0) return;
    this.#pool.grow();
  }

  #onWorkerReady(handle: WorkerHandle): void {
    this.#bootstrapFailureReported = false;
    this.log.debug(`Worker ${handle.threadId} is serving`);
    this.emit('worker-online', handle);
    this.#queue.drain((socket) => this.#prepare(socket));
    this.#maybeEmitReady();
  }

  #onWorkerExit(handle: WorkerHandle, code: number, reason: string): void {
    const repeatedBootstrapFailure = handle.readyAt === 0 && this.#bootstrapFailureReported;
    const level = reason === 'retired' || repeatedBootstrapFailure ? 'debug' : 'warn';
    this.log[level](`Worker ${handle.threadId} exited (code ${code}): ${reason}`);
    this.#transport?.workerExited?.(handle);
    this.emit('worker-exit', handle, code, reason);
    if (!this.#shutdown && this.#queue.length > 0 && this.#pool.size === 0 && !this.#pool.backingOff) this.#pool.grow();
  }

  #onBootstrapFailure(handle: WorkerHandle): void {
    if (this.#pool.ready.length === 0) this.#queue.drain((socket) => this.#turnAway(socket));
    if (this.#bootstrapFailureReported) return;
    this.#bootstrapFailureReported = true;
    const cause = handle.bootstrapError ?? handle.uncaughtError;
    const err = new ERR_WORKER_BOOTSTRAP(this.#options.workerURL.href, cause?.message ?? 'the worker exited while starting');
    (err as Error).cause = cause;
    this.log.error(`${err.message}\n${cause?.stack ?? ''}`);
    this.#reportError(err);
  }

  #reportError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else this.log.error(err.message);
  }

  #maybeEmitReady(): void {
    if (this.#readyEmitted || !this.#transport || this.#pool.ready.length < this.minWorkers) return;
    this.#readyEmitted = true;
    this.emit('ready');
  }

  #reapIdleWorkers(): void {
    const now = performance.now();
    for (const handle of [...this.#pool.ready]) {
      if (this.#pool.ready.length <= this.minWorkers) return;
      if (handle.connections === 0 && now - handle.idleSince >= this.#options.workersCheckingInterval) {
        this.log.debug(`Retiring idle worker ${handle.threadId}`);
        this.#pool.retire(handle);
      }
    }
  }

  /**
   * Replaces every worker, one at a time: each new worker is serving before an old one stops taking
   * connections and drains; an old worker still holding connections `timeout` ms later is stopped.
   * Resolves once the old workers are gone. Rejects, leaving the remaining old workers serving, if a
   * new one fails.
   */
  reload(options: ReloadOptions = {}): Promise<void> {
    let timeout: number;
    try {
      timeout = drainTimeout(options.timeout);
    } catch (err) {
      return Promise.reject(err);
    }
    const run = (this.#reloading ?? Promise.resolve()).catch(() => {}).then(() => {
      if (this.#shutdown) return;
      this.#reloads++;
      this.log.info(`Reloading ${this.#pool.size} workers`);
      return this.#pool.replaceAll(timeout);
    });
    this.#reloading = run;
    return run;
  }

  /**
   * Stops accepting, lets open connections finish for up to `timeout` ms, then stops every worker.
   * Resolves to the outcome of stopping each worker.
   */
  shutdown(options: ShutdownOptions = {}): Promise<PromiseSettledResult<number>[]> {
    if (!this.#shutdown) {
      try {
        this.#shutdown = this.#runShutdown(drainTimeout(options.timeout));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.#shutdown;
  }

  async #runShutdown(timeout: number): Promise<PromiseSettledResult<number>[]> {
    clearInterval(this.#reaper);
    this.#balancer.close?.();
    // The connection listener stays: a TLS handshake under way now still ends in 'secureConnection',
    // and #onConnection closes what arrives from now on.
    this.server.off('error', this.#onServerError);
    this.server.close();
    this.#pool.close();
    this.#queue.drain((socket) => this.#turnAway(socket));
    const started = performance.now();
    const results = await this.#pool.retireAll(timeout);
    await this.#transport?.close?.(Math.max(0, timeout - (performance.now() - started)));
    this.#removePipeDir();
    process.off('exit', this.#removePipeDir);
    return results;
  }

  readonly #removePipeDir = (): void => {
    if (this.#pipeDir) fs.rmSync(this.#pipeDir, { recursive: true, force: true });
  };
}

export function createServiceProxy(options: ServiceProxyOptions): ServiceProxy {
  return new ServiceProxy(options);
}
