import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import type { Logger } from 'streams-logger';
import { loadTls } from '../builtins.ts';
import { ERR_RELOAD_INTERRUPTED, ERR_WORKER_BOOTSTRAP } from '../errors.ts';
import { createLogger } from '../logging.ts';
import { type ResolvedOptions, resolveOptions, type ServiceProxyOptions } from '../options.ts';
import type { ConcreteTransportName, WorkerBootData } from '../protocol/messages.ts';
import type { DeliverySettings, Transport } from '../transports/index.ts';
import { ConnectionLedger } from './ledger.ts';
import { Membership } from './membership.ts';
import { WorkerPool, type WorkerReports } from './pool.ts';
import { ProcessCalls } from './process-calls.ts';
import { WorkerWarnings } from './worker-warnings.ts';
import { type PublicBinder, PublicPort } from './public-port.ts';
import { SharedPorts } from './shared-ports.ts';
import { collectStats, type ProxyStats } from './stats.ts';
import { type ReloadOptions, resolveStopOptions, type ShutdownOptions, type StopSettings } from './stop-options.ts';
import { openTransport } from './transport-choice.ts';
import { type HealthReport, WorkerHealth } from './worker-health.ts';
import { exitReport, type WorkerRecord } from './worker-record.ts';
import { WorkerView } from './worker-view.ts';

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
  readonly #membership: Membership;
  readonly #health: WorkerHealth;
  readonly #public: PublicPort;
  readonly #sharedPorts: SharedPorts;
  readonly #processCalls = new ProcessCalls(() => this.#pool.records);
  readonly #warnings = new WorkerWarnings();
  readonly #bindsLate: boolean;
  readonly #token = randomBytes(16).toString('hex');
  readonly #ticketKeys = randomBytes(48);
  #transport: Transport | undefined;
  #reloads = 0;
  #readyEmitted = false;
  #bootstrapFailureReported = false;
  #shutdown: Promise<PromiseSettledResult<number>[]> | undefined;
  #reloading: Promise<void> | undefined;

  /**
   * `internal` is the launcher's (see ../launcher/launch.ts): with a `binder`, the server is bound
   * where the first worker's app asks, not before the workers start.
   */
  constructor(options: ServiceProxyOptions, internal: { binder?: PublicBinder } = {}) {
    super();
    const resolved = resolveOptions(options);
    this.#options = resolved;
    this.server = resolved.server;
    this.minWorkers = resolved.minWorkers;
    this.maxWorkers = resolved.maxWorkers;
    this.log = createLogger('ServiceProxy');
    this.#ledger = new ConnectionLedger(resolved);
    this.#bindsLate = internal.binder !== undefined;
    this.#pool = new WorkerPool({
      minWorkers: resolved.minWorkers,
      maxWorkers: resolved.maxWorkers,
      workerOptions: resolved.workerOptions,
      workerStartTimeout: resolved.workerStartTimeout,
      idleTimeout: resolved.workersCheckingInterval,
      shutdownTimeout: resolved.shutdownTimeout,
      heartbeats: resolved.stallTimeout > 0,
      log: this.log,
      boot: (id, slot) => this.#bootData(id, slot),
      reports: this.#reports,
    });
    this.#membership = new Membership(resolved.balance === 'ip-hash' && resolved.trustProxy !== undefined, this.#pool);
    this.#health = new WorkerHealth(this.#pool, {
      minWorkers: resolved.minWorkers,
      stallTimeout: resolved.stallTimeout,
      maxMemoryRestart: resolved.maxMemoryRestart,
      drainTimeout: resolved.shutdownTimeout,
      log: this.log,
    });
    const terminatesTls = this.server instanceof loadTls().Server;
    this.#public = new PublicPort({
      options: resolved,
      ledger: this.#ledger,
      pool: this.#pool,
      terminatesTls,
      log: this.log,
      onError: (err) => this.#reportError(err),
      binder: internal.binder,
    });
    const { balance, perIpPrefix, queueLimit, queueTimeout } = resolved;
    const { log } = this;
    const [ledger, pool] = [this.#ledger, this.#pool];
    this.#sharedPorts = new SharedPorts({ ledger, pool, balance, perIpPrefix, queueLimit, queueTimeout, log });
    this.#followWorkers();
    this.#start(terminatesTls).catch((err: unknown) => this.#reportError(err as Error));
  }

  /** One entry per live worker, with its `worker`, `threadId` and open `connections`. */
  get agents(): WorkerView[] {
    return [...this.#pool.records].map(WorkerView.of);
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
    return this.#transport?.name;
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
      counters: this.#public.counters(this.#transport?.intake),
      queued: this.#public.dispatcher.queued,
      listeners: this.#sharedPorts.stats(),
      restarts: this.#pool.restarts,
      reloads: this.#reloads,
      health: this.#health.counters,
      workers: [...this.#pool.records],
    });
  }

  /** Everything a worker is told at boot, here alone. */
  #bootData(id: number, slot: number): Omit<WorkerBootData, 'port' | 'heartbeat'> {
    const { intake, deliveries } = this.#transport!;
    const { tcp } = deliveries;
    return {
      socketnautWorker: 1,
      id,
      moduleURL: this.#options.workerURL.href,
      transport: this.#transport!.name,
      pipePath: tcp.pipePathFor(id),
      pipeDir: deliveries.unix.dir,
      token: this.#token,
      publicAddress: this.server.address(),
      logLevel: this.log.level,
      trackPeers: this.#ledger.trackPeers,
      serverDefaults: this.#options.serverDefaults,
      ticketKeys: this.#ticketKeys,
      proxyHeaderTimeout: tcp.readsOnMainThread ? undefined : this.#options.proxyProtocol?.timeout,
      reuseport: intake.workerBoot(id, slot),
      socketioAdapter: this.#options.socketioAdapter !== 'off',
      trustProxy: this.#options.trustProxy,
      routeByClient: this.#membership.enabled ? { ipv6PrefixBits: this.#options.perIpPrefix } : undefined,
      // Under reuseport the workers accept the public port's connections themselves.
      reportSessions: this.#public.dispatcher.followsSessions && this.#transport!.name !== 'reuseport',
      userWorkerData: undefined,
    };
  }

  /** What workers report beyond their own lives, each to its one owner. */
  readonly #reports: WorkerReports = {
    closed: (record, count, peers, pipeIds) => {
      this.#ledger.ended(record.account, count, peers);
      if (pipeIds) for (const delivery of this.#transport?.deliveries.all ?? []) delivery.workerClosed(record, pipeIds);
    },
    listen: (record, request, listen) => this.#sharedPorts.listen(record, request, listen),
    publicListen: (record, request, listen) => this.#public.workerListens(record, request, listen),
    unlisten: (record, server) => this.#sharedPorts.unlisten(record, server),
    listenerReturned: (record, server) => this.#transport?.intake.listenerReturned(record, server),
    proxyHeaderRejected: () => this.#public.dispatcher.headerRejectedInWorker(),
    connectionRefused: (record, socket, sharedPort, own) => {
      if (sharedPort === 0) this.#public.dispatcher.givenBack(record, socket, !own);
      else this.#sharedPorts.givenBack(record, sharedPort, socket);
    },
    handoffLatencies: (seconds) => {
      if (!this.#options.measureHandoffLatency) return;
      for (const value of seconds) this.emit('handoff-latency', value);
    },
    sessionIssued: (record, address) => this.#public.dispatcher.sessionIssued(record.id, address),
    processCall: (record, call, reply, answered) => this.#processCalls.answer(record, call, reply, answered),
    warning: (record, warning) => this.#warnings.add(record.threadId, warning),
  };

  /** The pool's news of each worker's life, passed on in this order: intake, ports, then users. */
  #followWorkers(): void {
    const pool = this.#pool;
    pool.on('worker-ready', (record: WorkerRecord) => {
      this.#bootstrapFailureReported = false;
      const intake = this.#transport?.intake;
      record.countOwnConnections(intake?.ownConnections(record));
      intake?.add(record);
      this.#public.dispatcher.workerReady();
      this.#sharedPorts.workerReady();
      this.#membership.changed();
      this.log.debug(`Worker ${record.threadId} is serving`);
      this.emit('worker-online', WorkerView.of(record));
      this.#maybeEmitReady();
    });
    pool.on('worker-resumed', (record: WorkerRecord) => {
      this.#transport?.intake.add(record);
      this.#public.dispatcher.workerReady();
      this.#sharedPorts.workerReady();
      this.#membership.changed();
      this.#maybeEmitReady();
    });
    pool.on('worker-stalled', (record: WorkerRecord) => {
      this.#transport?.intake.rest(record, false);
      this.#membership.changed();
    });
    pool.on('worker-retiring', (record: WorkerRecord) => {
      this.#transport?.intake.rest(record, true);
      this.#membership.changed();
    });
    pool.on('worker-exit', (record: WorkerRecord, code: number, reason: string) => {
      // The deliveries count out what they carry for the worker first; the ledger then, whatever else it held.
      for (const delivery of this.#transport?.deliveries.all ?? []) delivery.workerExited(record);
      this.#transport?.intake.remove(record);
      this.#ledger.workerExited(record.account);
      this.#sharedPorts.workerExited(record);
      this.#public.dispatcher.workerExited();
      this.#membership.changed();
      this.#logExit(record, code, reason);
      this.emit('worker-exit', WorkerView.of(record), code, reason);
    });
    pool.on('bootstrap-failure', (record: WorkerRecord) => this.#onBootstrapFailure(record));
    pool.on('start-failed', (err: Error) => this.#reportError(err));
  }

  #logExit(record: WorkerRecord, code: number, reason: string): void {
    // Reported already, or (a reload's successor) by reload()'s rejection.
    const reportedElsewhere =
      record.readyAt === 0 && (this.#bootstrapFailureReported || record.succession === 'reload');
    const { level, message } = exitReport(record, code, reason, reportedElsewhere);
    this.log[level](message);
  }

  async #start(terminatesTls: boolean): Promise<void> {
    const { transport: requested, proxyProtocol, balance, measureHandoffLatency } = this.#options;
    const ledger = this.#ledger;
    const settings: DeliverySettings = {
      token: this.#token,
      recordLatency: measureHandoffLatency ? (seconds) => this.emit('handoff-latency', seconds) : undefined,
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
    const transport = await openTransport(choice, settings, () => this.#public.reuseportSettings(this.maxWorkers));
    if (this.#shutdown) {
      transport.intake.stopAccepting();
      await Promise.all(transport.deliveries.all.map((delivery) => delivery.close(0)));
      return;
    }
    this.#transport = transport;
    const { name, intake, deliveries } = transport;
    const budget = deliveries.tcp.connectionBudget();
    if (budget !== undefined) {
      ledger.defaultMaxConnections(budget);
      this.log.debug(
        `Transport ${name}: at most ${ledger.maxConnections} connections at once, within the open-file limit`,
      );
    }
    this.log.info(`Transport: ${name}; workers: ${this.minWorkers} to ${this.maxWorkers}`);
    // Where workers admit connections themselves, the main thread counts in the same memory.
    if (intake.sharedCounts) ledger.useCounts(intake.sharedCounts);
    this.#public.dispatcher.useDelivery(deliveries.tcp);
    this.#sharedPorts.useDeliveries(deliveries);
    // Workers boot knowing where the public port is bound: a server still binding (its owner called
    // listen() just before createServiceProxy()) has no address yet. Not events.once(): it rejects on
    // 'error', which the public port reports already. One the launcher binds where the first
    // worker's app asks is bound later.
    if (!this.server.listening && !this.#bindsLate)
      await new Promise((resolve) => this.server.once('listening', resolve));
    if (this.#shutdown) return;
    this.#pool.start();
    this.#health.start();
    // A pool that may start empty still needs one worker's app to say where to bind.
    if (this.#pool.size === 0 && (this.#public.dispatcher.queued > 0 || this.#bindsLate)) this.#pool.grow();
    this.#maybeEmitReady();
  }

  #onBootstrapFailure(record: WorkerRecord): void {
    if (this.#pool.ready.length === 0) this.#public.dispatcher.turnAwayWaiting();
    if (this.#bootstrapFailureReported) return;
    this.#bootstrapFailureReported = true;
    const cause = record.error;
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
    if (this.#readyEmitted || !this.#transport || this.#pool.ready.length < this.minWorkers) return;
    if (this.#bindsLate && this.#pool.ready.length === 0) return;
    this.#readyEmitted = true;
    this.emit('ready');
  }

  /**
   * Replaces every worker, one at a time: each new worker is serving before an old one gets `signal`,
   * stops taking connections and drains; an old worker still holding connections `timeout` ms later
   * is stopped. Resolves once the old workers are gone. Rejects, leaving the remaining old workers
   * serving, if a new one fails; or with ERR_RELOAD_INTERRUPTED if shutdown() is called meanwhile.
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
      })
      .catch((err: unknown) => {
        // A shutdown retires the successors too: that is no failure of the new code.
        throw this.#shutdown ? new ERR_RELOAD_INTERRUPTED() : err;
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
    this.#public.close();
    this.#pool.close();
    this.#health.close();
    this.#transport?.intake.stopAccepting();
    this.#sharedPorts.close();
    const started = performance.now();
    const results = await this.#pool.retireAll(timeout, signal);
    const left = Math.max(0, timeout - (performance.now() - started));
    await Promise.all((this.#transport?.deliveries.all ?? []).map((delivery) => delivery.close(left)));
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
