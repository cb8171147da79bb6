import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from 'streams-logger';
import { loadTls } from '../builtins.ts';
import { ERR_WORKER_BOOTSTRAP } from '../errors.ts';
import { createLogger } from '../logging.ts';
import { resolveOptions, type ResolvedOptions, type ServiceProxyOptions } from '../options.ts';
import type { ConcreteTransportName } from '../protocol/messages.ts';
import { ProxyHeaderGate } from '../proxy-protocol/gate.ts';
import type { TransportSettings } from '../transports/index.ts';
import { ConnectionLedger } from './ledger.ts';
import { Listeners } from './listeners.ts';
import { WorkerPool } from './pool.ts';
import { collectStats, type ProxyStats } from './stats.ts';
import { resolveStopOptions, type ReloadOptions, type ShutdownOptions, type StopSettings } from './stop-options.ts';
import { guardHandshakes } from './tls-handshakes.ts';
import { openTransport } from './transport-choice.ts';
import type { WorkerHandle } from './worker-handle.ts';
import { WorkerHealth, type HealthReport } from './worker-health.ts';
import { ServiceProxyAgent } from './worker-view.ts';

export type { ReloadOptions, ShutdownOptions } from './stop-options.ts';
export type { HealthReport, WorkerHealthEntry } from './worker-health.ts';

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
  readonly #ledger: ConnectionLedger;
  readonly #pool: WorkerPool;
  readonly #listeners: Listeners;
  readonly #health: WorkerHealth;
  readonly #token = randomBytes(16).toString('hex');
  readonly #ticketKeys = randomBytes(48);
  #reloads = 0;
  #readyEmitted = false;
  #bootstrapFailureReported = false;
  #shutdown: Promise<PromiseSettledResult<number>[]> | undefined;
  #reloading: Promise<void> | undefined;

  constructor(options: ServiceProxyOptions) {
    super();
    const resolved = resolveOptions(options);
    const terminatesTls = resolved.server instanceof loadTls().Server;
    this.#options = resolved;
    this.server = resolved.server;
    this.minWorkers = resolved.minWorkers;
    this.maxWorkers = resolved.maxWorkers;
    this.log = createLogger('ServiceProxy');
    this.#ledger = new ConnectionLedger(resolved);
    this.#pool = new WorkerPool({
      minWorkers: resolved.minWorkers,
      maxWorkers: resolved.maxWorkers,
      workerOptions: resolved.workerOptions,
      workerStartTimeout: resolved.workerStartTimeout,
      idleTimeout: resolved.workersCheckingInterval,
      heartbeats: resolved.stallTimeout > 0,
      log: this.log,
      boot: (id, slot) => this.#bootData(id, slot),
    });
    this.#health = new WorkerHealth(this.#pool, {
      minWorkers: resolved.minWorkers,
      stallTimeout: resolved.stallTimeout,
      maxMemoryRestart: resolved.maxMemoryRestart,
      drainTimeout: resolved.shutdownTimeout,
      log: this.log,
    });
    this.#listeners = new Listeners({
      ledger: this.#ledger,
      pool: this.#pool,
      balance: resolved.balance,
      perIpPrefix: resolved.perIpPrefix,
      gate: resolved.proxyProtocol && new ProxyHeaderGate(resolved.proxyProtocol),
      queueLimit: resolved.queueLimit,
      queueTimeout: resolved.queueTimeout,
      overloadResponse: resolved.overloadResponse,
      log: this.log,
    });
    this.#routePoolEvents();

    // Hand-off needs sockets nothing has read from, and the pipe transport reads only once connected.
    if (terminatesTls) guardHandshakes(this.server as tls.Server, this.#listeners.public, resolved.handshakeTimeout);
    else {
      (this.server as net.Server & { pauseOnConnect: boolean }).pauseOnConnect = true;
      this.server.on('connection', this.#listeners.public.onConnection);
    }
    this.server.on('error', this.#onServerError);
    this.#start(terminatesTls).catch((err: unknown) => this.#reportError(err as Error));
  }

  /** One entry per live worker, with its `worker`, `threadId` and open `connections`. */
  get agents(): ServiceProxyAgent[] {
    return [...this.#pool.handles].map(ServiceProxyAgent.of);
  }

  /** True from the moment shutdown() is called: the proxy takes no new connection, and `/ready` answers 503. */
  get stopping(): boolean {
    return this.#shutdown !== undefined;
  }

  /** What the `/ready` and `/live` probes answer, read at once on the main thread (see worker-health.ts). */
  health(): HealthReport {
    return this.#health.report(this.stopping, this.server.listening);
  }

  /** The transport in use, once chosen. */
  get transport(): ConcreteTransportName | undefined {
    return this.#listeners.transport?.name;
  }

  /**
   * A snapshot of the pool and of what the proxy has done with the connections it accepted. Costs
   * nothing until called: each worker's event-loop use is read from the main thread, its heap asked for.
   * Event-loop use covers the time since the previous call that passed the same `since` name, so that
   * two readers (a metrics scrape and a status line, say) do not shorten each other's intervals; a
   * call less than `minInterval` ms after that one repeats its value.
   */
  stats(since = 'stats', minInterval = 0): Promise<ProxyStats> {
    return collectStats(since, minInterval, {
      transport: this.transport,
      counters: this.#listeners.publicCounters,
      queued: this.#listeners.public.queued,
      listeners: this.#listeners.stats(),
      restarts: this.#pool.restarts,
      reloads: this.#reloads,
      health: this.#health.counters,
      workers: [...this.#pool.handles],
    });
  }

  #bootData(id: number, slot: number): ReturnType<ConstructorParameters<typeof WorkerPool>[0]['boot']> {
    const transport = this.#listeners.transport!;
    return {
      socketnautWorker: 1,
      moduleURL: this.#options.workerURL.href,
      transport: transport.name,
      pipePath: transport.pipePathFor(id),
      token: this.#token,
      publicAddress: this.#options.publicAddress,
      logLevel: this.log.level,
      trackPeers: this.#ledger.trackPeers,
      serverDefaults: this.#options.serverDefaults,
      ticketKeys: this.#ticketKeys,
      proxyHeaderTimeout: transport.readsOnMainThread ? undefined : this.#options.proxyProtocol?.timeout,
      reuseport: transport.workerBoot?.(id, slot),
      userWorkerData: undefined,
    };
  }

  #routePoolEvents(): void {
    const pool = this.#pool;
    const listeners = this.#listeners;
    pool.on('worker-ready', (handle: WorkerHandle) => {
      this.#bootstrapFailureReported = false;
      this.log.debug(`Worker ${handle.threadId} is serving`);
      this.emit('worker-online', ServiceProxyAgent.of(handle));
      listeners.workerReady();
      this.#maybeEmitReady();
    });
    pool.on('worker-resumed', () => listeners.workerReady());
    pool.on('worker-exit', (handle: WorkerHandle, code: number, reason: string) => {
      listeners.workerExited(handle);
      // Reported already, or (a reload's successor) by reload()'s rejection.
      const reportedElsewhere = handle.readyAt === 0 && (this.#bootstrapFailureReported || handle.successor);
      const expected = reason === 'retired' || handle.endReason !== undefined;
      const level = expected || reportedElsewhere ? 'debug' : 'warn';
      // A crash of a serving worker is logged with its stack, as Node prints an uncaught error.
      const stack = handle.readyAt !== 0 && !expected ? handle.uncaughtError?.stack : undefined;
      this.log[level](
        `Worker ${handle.threadId} (slot ${handle.slot}) exited (code ${code}): ${reason}${stack ? `\n${stack}` : ''}`,
      );
      this.emit('worker-exit', ServiceProxyAgent.of(handle), code, reason);
    });
    pool.on('bootstrap-failure', (handle: WorkerHandle) => this.#onBootstrapFailure(handle));
    pool.on('connections-closed', listeners.workerClosed.bind(listeners));
    pool.on('proxy-header-rejected', () => listeners.public.headerRejectedInWorker());
    pool.on('listen', listeners.listen.bind(listeners));
    pool.on('unlisten', listeners.unlisten.bind(listeners));
  }

  async #start(terminatesTls: boolean): Promise<void> {
    const { transport: requested, proxyProtocol, balance, measureHandoffLatency } = this.#options;
    const recordLatency = measureHandoffLatency
      ? (seconds: number) => this.emit('handoff-latency', seconds)
      : undefined;
    const ledger = this.#ledger;
    const settings: TransportSettings = {
      token: this.#token,
      recordLatency,
      peerOf: ledger.trackPeers ? (socket) => ledger.peerOf(socket) : undefined,
      maxWorkers: this.maxWorkers,
    };
    const choice = {
      requested,
      terminatesTls,
      proxyProtocol: proxyProtocol !== undefined,
      balance,
      fixedPool: this.minWorkers === this.maxWorkers,
      log: this.log,
    };
    const transport = await openTransport(choice, settings, () =>
      this.#listeners.reuseportSettings(this.server, this.#options),
    );
    const { name } = transport;
    if (this.#shutdown) return void transport.stopAccepting?.();
    const budget = transport.connectionBudget();
    if (budget !== undefined) {
      this.#ledger.defaultMaxConnections(budget);
      this.log.debug(
        `Transport ${name}: at most ${this.#ledger.maxConnections} connections at once, within the open-file limit`,
      );
    }
    if (recordLatency && name === 'handoff') this.#pool.on('handoff-latency', recordLatency);
    this.log.info(`Transport: ${name}; workers: ${this.minWorkers} to ${this.maxWorkers}`);
    this.#listeners.useTransport(transport, settings);
    this.#pool.start();
    this.#health.start();
    if (this.#pool.size === 0 && this.#listeners.public.queued > 0) this.#pool.grow();
    this.#maybeEmitReady();
  }

  readonly #onServerError = (err: NodeJS.ErrnoException): void => {
    if (err.syscall === 'accept') this.#listeners.public.acceptFailed(err);
    else if (this.server.listenerCount('error') === 1) this.#reportError(err);
  };

  #onBootstrapFailure(handle: WorkerHandle): void {
    if (this.#pool.ready.length === 0) this.#listeners.public.turnAwayWaiting();
    if (this.#bootstrapFailureReported) return;
    this.#bootstrapFailureReported = true;
    const cause = handle.error;
    const err = new ERR_WORKER_BOOTSTRAP(
      this.#options.workerURL.href,
      cause?.message ?? 'the worker exited while starting',
    );
    (err as Error).cause = cause;
    this.log.error(`${err.message}\n${cause?.stack ?? ''}`);
    this.#reportError(err);
  }

  #reportError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else this.log.error(err.message);
  }

  #maybeEmitReady(): void {
    if (this.#readyEmitted || !this.#listeners.transport || this.#pool.ready.length < this.minWorkers) return;
    this.#readyEmitted = true;
    this.emit('ready');
  }

  /**
   * Replaces every worker, one at a time: each new worker is serving before an old one gets `signal`,
   * stops taking connections and drains; an old worker still holding connections `timeout` ms later
   * is stopped. Resolves once the old workers are gone. Rejects, leaving the remaining old workers
   * serving, if a new one fails.
   */
  reload(options: ReloadOptions = {}): Promise<void> {
    let settings: StopSettings;
    try {
      settings = this.#stopSettings(options);
    } catch (err) {
      return Promise.reject(err);
    }
    const run = (this.#reloading ?? Promise.resolve())
      .catch(() => {})
      .then(() => {
        if (this.#shutdown) return;
        this.#reloads++;
        this.log.info(`Reloading ${this.#pool.size} workers`);
        return this.#pool.replaceAll(settings.timeout, settings.signal);
      });
    this.#reloading = run;
    return run;
  }

  /**
   * Stops accepting, emits `signal` in each worker, lets open connections finish for up to `timeout`
   * ms, then stops every worker. Resolves to the outcome of stopping each worker.
   */
  shutdown(options: ShutdownOptions = {}): Promise<PromiseSettledResult<number>[]> {
    if (!this.#shutdown) {
      try {
        this.#shutdown = this.#runShutdown(this.#stopSettings(options));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.#shutdown;
  }

  async #runShutdown({ timeout, signal }: StopSettings): Promise<PromiseSettledResult<number>[]> {
    // The connection listeners stay: a TLS handshake under way now still ends in 'secureConnection',
    // and the dispatcher closes what arrives from now on.
    this.server.off('error', this.#onServerError);
    this.server.close();
    this.#pool.close();
    this.#health.close();
    this.#listeners.close();
    const started = performance.now();
    const results = await this.#pool.retireAll(timeout, signal);
    await this.#listeners.closeTransports(Math.max(0, timeout - (performance.now() - started)));
    return results;
  }

  /** A stop's settings; its timeout, when not given, is the proxy's `shutdownTimeout`. */
  #stopSettings(options: ShutdownOptions): StopSettings {
    const settings = resolveStopOptions(options);
    return options.timeout === undefined ? { ...settings, timeout: this.#options.shutdownTimeout } : settings;
  }
}

export function createServiceProxy(options: ServiceProxyOptions): ServiceProxy {
  return new ServiceProxy(options);
}
