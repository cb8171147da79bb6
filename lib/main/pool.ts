import { EventEmitter } from 'node:events';
import { type MessagePort, receiveMessageOnPort, type WorkerOptions } from 'node:worker_threads';
import type { Logger } from 'streams-logger';
import { ERR_WORKER_START, withCause } from '../errors.ts';
import { acceptWorkerLogRecord } from '../logging.ts';
import type net from 'node:net';
import type {
  FromWorker,
  ListenRequest,
  ProcessCall,
  PublicListen,
  WorkerBootData,
  WorkerWarning,
} from '../protocol/messages.ts';
import { Heartbeat } from './heartbeat.ts';
import { RestartBackoff } from './restart-backoff.ts';
import { replaceEach } from './succession.ts';
import { pendingAtDeadline, type Succession, startWorker, type WorkerRecord } from './worker-record.ts';

/** Where the pool passes on what workers report that is not about their own lives. */
export interface WorkerReports {
  /** Connections that closed: `count` handed over, with their peers when asked for; `pipeIds` piped. */
  closed(record: WorkerRecord, count: number, peers: string[] | undefined, pipeIds: number[] | undefined): void;
  listen(record: WorkerRecord, request: number, listen: ListenRequest): void;
  /** The worker's app listens on the public port. */
  publicListen(record: WorkerRecord, request: number, listen: PublicListen): void;
  unlisten(record: WorkerRecord, server: number): void;
  /** The worker gave back a listener of the public port it accepted on. */
  listenerReturned(record: WorkerRecord, server: net.Server): void;
  proxyHeaderRejected(): void;
  handoffLatencies(seconds: readonly number[]): void;
  sessionIssued(record: WorkerRecord, address: string): void;
  /**
   * The worker gave back a connection for a server its app had closed: one moved to it for
   * `sharedPort` (0 for the public port), or one it accepted itself (`own`), still admitted.
   */
  connectionRefused(record: WorkerRecord, socket: net.Socket, sharedPort: number, own: boolean): void;
  /** The worker waits, blocked, until `answered` says that the answer is on `reply`. */
  processCall(record: WorkerRecord, call: ProcessCall, reply: MessagePort, answered: SharedArrayBuffer): void;
  /** A process warning the worker's code emitted. */
  warning(record: WorkerRecord, warning: WorkerWarning): void;
}

export interface PoolSettings {
  minWorkers: number;
  maxWorkers: number;
  workerOptions: WorkerOptions;
  workerStartTimeout: number;
  /** Workers above minWorkers idle this long are retired; also how often that is checked. */
  idleTimeout: number;
  /**
   * How long a stopping worker may take, to finish its connections and its app's own work, when
   * retire() is given no timeout, or when it stops on its own (its app closed its server).
   */
  shutdownTimeout: number;
  boot: (id: number, slot: number) => Omit<WorkerBootData, 'port' | 'heartbeat'>;
  /** Give each worker a heartbeat, by which a stalled one is told (see stall-watch.ts). */
  heartbeats?: boolean;
  reports: WorkerReports;
  log: Logger;
  /** Starts the thread; tests give a stand-in. */
  spawn?: typeof startWorker;
}

export { HEALTHY_UPTIME_MS, RESTART_BASE_DELAY_MS, RESTART_FACTOR, RESTART_MAX_DELAY_MS } from './restart-backoff.ts';
/**
 * How long a worker told to end at its deadline may take to do so, its 'exit' listeners run, before it
 * is stopped: only a worker whose loop is blocked takes that long.
 */
const END_GRACE_MS = 1_000;

/**
 * Starts, tracks, reaps and replaces worker threads. Emits 'worker-ready' (record), 'worker-stalled'
 * (record), 'worker-resumed' (record, once a stalled one turns again), 'worker-retiring' (record),
 * 'worker-exit' (record, code, reason), 'bootstrap-failure' (record) and 'start-failed' (error). Hears every message of every
 * worker, and passes on to `reports` those not about the worker's life.
 */
export class WorkerPool extends EventEmitter {
  /** Every worker not yet exited, in start order. */
  readonly #records = new Set<WorkerRecord>();
  /** The workers that can take a connection now: ready, and not stalled. The balancer picks among these. */
  readonly #ready: WorkerRecord[] = [];
  readonly #settings: PoolSettings;
  readonly #spawn: typeof startWorker;
  #nextId = 0;
  readonly #backoff = new RestartBackoff();
  /** Slots whose worker died unexpectedly, with how often that has happened to each. */
  readonly #restartsBySlot = new Map<number, number>();
  #restarts = 0;
  #reaper: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(settings: PoolSettings) {
    super();
    this.#settings = settings;
    this.#spawn = settings.spawn ?? startWorker;
  }

  get records(): ReadonlySet<WorkerRecord> {
    return this.#records;
  }

  get ready(): readonly WorkerRecord[] {
    return this.#ready;
  }

  get size(): number {
    return this.#records.size;
  }

  /** Workers that died unexpectedly and were replaced. */
  get restarts(): number {
    return this.#restarts;
  }

  get starting(): number {
    return [...this.#records].filter((record) => record.state === 'starting').length;
  }

  /** Whether restarts are being held back after failures. */
  get backingOff(): boolean {
    return this.#backoff.waiting;
  }

  /** Starts minWorkers workers and the reaping of idle ones above that. */
  start(): void {
    this.#reaper = setInterval(() => this.#reapIdleWorkers(), this.#settings.idleTimeout).unref();
    this.replenish();
  }

  /**
   * Starts a worker if the pool is below `maxWorkers`; or, to replace `successorOf` in a reload, in
   * that worker's slot and regardless of the bound.
   */
  grow(successorOf?: WorkerRecord, succession: Succession = 'reload'): WorkerRecord | undefined {
    if (this.#closed || (!successorOf && this.#records.size >= this.#settings.maxWorkers)) return undefined;
    const id = ++this.#nextId;
    const slot = successorOf?.slot ?? this.#freeSlot();
    const heartbeat = this.#settings.heartbeats ? new Heartbeat() : undefined;
    const restarts = this.#restartsBySlot.get(slot) ?? 0;
    const origin = { id, slot, restarts, succession: successorOf && succession, heartbeat };
    let record: WorkerRecord;
    try {
      const boot = { ...this.#settings.boot(id, slot), heartbeat: heartbeat?.buffer };
      record = this.#spawn(origin, boot, this.#settings.workerOptions);
    } catch (err) {
      // Called from timers too (restarts, growth): a throw would be uncaught on the main thread.
      const coded =
        err instanceof ERR_WORKER_START ? err : withCause(new ERR_WORKER_START((err as Error).message), err);
      this.emit('start-failed', coded);
      return undefined;
    }
    this.#records.add(record);
    record.account.onIdle = () => this.#stopIfDrained(record);
    const startTimer = setTimeout(() => {
      if (record.state !== 'starting') return;
      this.#settings.log.error(
        `Worker ${record.threadId} did not start serving within ${this.#settings.workerStartTimeout} ms`,
      );
      void record.worker.terminate();
    }, this.#settings.workerStartTimeout).unref();

    record.port.on('message', (message: FromWorker) => this.#onMessage(record, message));
    record.worker.once('exit', (code) => {
      clearTimeout(startTimer);
      this.#onExit(record, code);
    });
    return record;
  }

  /** A connection waits for a worker and none can take it: start one, unless one is starting; after failures, once the backoff allows. */
  growForWaiting(): void {
    if (this.starting === 0) this.#afterBackoff(() => this.starting === 0 && this.grow());
  }

  /** Every ready worker holds connections: start another while below maxWorkers, one at a time. */
  growIfAllBusy(): void {
    if (this.starting > 0 || this.#records.size >= this.#settings.maxWorkers) return;
    for (const record of this.#ready) if (record.connections === 0) return;
    this.grow();
  }

  /** Keeps at least `minWorkers` alive, restarting after failures with exponential backoff. */
  replenish(): void {
    if (this.#records.size >= this.#settings.minWorkers) return;
    this.#afterBackoff(() => {
      for (let i = this.#records.size; i < this.#settings.minWorkers; i++) this.grow();
    });
  }

  /** Runs `start` now or, after failures, once the backoff delay has passed; one wait at a time. */
  #afterBackoff(start: () => void): void {
    if (!this.#closed) this.#backoff.run(start);
  }

  #freeSlot(): number {
    const taken = new Set<number>();
    for (const record of this.#records) if (record.state !== 'retiring') taken.add(record.slot);
    let slot = 0;
    while (taken.has(slot)) slot++;
    return slot;
  }

  /**
   * Stops giving `record` connections and lets it finish them, emitting `signal` to the app's own
   * listeners in the worker first, then its app's own work; after `timeout` ms (by default the
   * shutdownTimeout setting) it is stopped.
   */
  retire(record: WorkerRecord, signal: NodeJS.Signals | undefined, timeout = this.#settings.shutdownTimeout): void {
    this.#leaveReady(record);
    if (record.state !== 'exited') this.emit('worker-retiring', record);
    record.retire(signal);
    this.#endAfter(record, timeout);
  }

  /**
   * Ends `record` once `timeout` ms have passed, if it has not ended by then: it is told to end, so
   * that its 'exit' listeners run and it says what was still pending; one that cannot (its loop
   * blocked, or stalled) is stopped.
   */
  #endAfter(record: WorkerRecord, timeout: number): void {
    if (record.state === 'exited') return;
    const deadline = setTimeout(() => {
      if (record.stalled) {
        void record.worker.terminate();
        return;
      }
      if (!record.endAtDeadline(timeout)) return;
      const backstop = setTimeout(() => void record.worker.terminate(), END_GRACE_MS).unref();
      void record.exited.then(() => clearTimeout(backstop));
    }, timeout).unref();
    void record.exited.then(() => clearTimeout(deadline));
  }

  /** A stalled worker takes no connection; it takes them again, and those waiting, once it turns again. */
  setStalled(record: WorkerRecord, stalled: boolean): void {
    if (!record.setStalled(stalled)) return;
    if (stalled) {
      this.#leaveReady(record);
      this.emit('worker-stalled', record);
      return;
    }
    if (record.state !== 'ready') return;
    this.#ready.push(record);
    this.emit('worker-resumed', record);
  }

  /** Starts no worker from now on. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#reaper);
    this.#backoff.cancel();
  }

  /** A rolling reload: see replaceEach(). */
  replaceAll(timeout: number, signal: NodeJS.Signals | undefined): Promise<void> {
    return replaceEach(this, timeout, signal);
  }

  /**
   * Retires every worker and waits up to `timeout` ms for them to finish their connections, then
   * stops whatever is left. Call close() first, so that none is started meanwhile.
   */
  async retireAll(timeout: number, signal: NodeJS.Signals | undefined): Promise<PromiseSettledResult<number>[]> {
    const records = [...this.#records];
    for (const record of records) this.retire(record, signal, timeout);
    await Promise.all(records.map((record) => record.exited));
    const results = await Promise.allSettled(records.map((record) => record.worker.terminate()));
    await Promise.all(records.map((record) => record.portClosed));
    return results;
  }

  #reapIdleWorkers(): void {
    const now = performance.now();
    for (const record of [...this.#ready]) {
      if (this.#ready.length <= this.#settings.minWorkers) return;
      if (record.connections === 0 && now - record.account.idleSince >= this.#settings.idleTimeout) {
        this.#settings.log.debug(`Retiring idle worker ${record.threadId}`);
        this.retire(record, 'SIGTERM');
      }
    }
  }

  // The main thread's one switch over what workers say.
  #onMessage(record: WorkerRecord, message: FromWorker): void {
    const { reports } = this.#settings;
    switch (message.type) {
      case 'ready':
        if (!record.transition('ready')) break;
        this.#ready.push(record);
        this.emit('worker-ready', record);
        break;
      case 'stopped':
        // Stopping on its own (its app closed its server), it has the time a retired worker would have.
        if (record.state === 'ready' && record.transition('retiring')) {
          this.emit('worker-retiring', record);
          this.#endAfter(record, this.#settings.shutdownTimeout);
        }
        this.#leaveReady(record);
        break;
      case 'drained':
        record.markDrained();
        this.#stopIfDrained(record);
        break;
      case 'bootstrap-error':
        record.bootstrapFailed(message.error);
        break;
      case 'pending':
        this.#settings.log.warn(pendingAtDeadline(record, message.resources));
        break;
      case 'connection-refused':
        reports.connectionRefused(record, message.socket, message.sharedPort ?? 0, message.own);
        // One it accepted itself, or was moved by another worker, was counted out in the memory the
        // threads share, which tells no one: it may have been the last the drained worker held.
        this.#stopIfDrained(record);
        break;
      case 'log':
        acceptWorkerLogRecord(message.record);
        break;
      case 'warning':
        reports.warning(record, message.warning);
        break;
      case 'closed':
        reports.closed(record, message.count, message.peers, message.pipeIds);
        break;
      case 'listen':
        reports.listen(record, message.request, message.listen);
        break;
      case 'public-listen':
        reports.publicListen(record, message.request, message.listen);
        break;
      case 'unlisten':
        reports.unlisten(record, message.sharedPort);
        break;
      case 'listener-returned':
        reports.listenerReturned(record, message.server);
        break;
      case 'proxy-header-rejected':
        reports.proxyHeaderRejected();
        break;
      case 'handoff-latencies':
        reports.handoffLatencies(message.seconds);
        break;
      case 'session-issued':
        reports.sessionIssued(record, message.address);
        break;
      case 'process-call':
        reports.processCall(record, message.call, message.reply, message.answered);
        break;
      default:
        message satisfies never;
    }
  }

  // With the pipe transport a connection can be on its way over the worker's Unix socket after the
  // worker said it was drained: the worker may end only once the main thread counts none either. It
  // ends itself, once its app's own work is done, or at the deadline its retirement set.
  #stopIfDrained(record: WorkerRecord): void {
    if (record.drained && record.connections === 0) record.allowEnd();
  }

  #onExit(record: WorkerRecord, code: number): void {
    // What it said last (what was pending, its last log records) is heard before its channel closes;
    // that it was ready no longer matters.
    for (let last = receiveMessageOnPort(record.port); last; last = receiveMessageOnPort(record.port)) {
      const message = last.message as FromWorker;
      if (message.type !== 'ready') this.#onMessage(record, message);
    }
    const failed = record.state === 'starting' || (record.state === 'ready' && !this.#closed);
    const reason = record.exitReason(failed, code);
    record.transition('exited', reason);
    this.#records.delete(record);
    this.#leaveReady(record);
    record.port.close();
    // A successor that never served (code that fails to load, at a reload) is no crash of the pool.
    if (!record.succession || record.readyAt !== 0) {
      this.#backoff.record(failed, record.readyAt ? performance.now() - record.readyAt : 0);
      if (failed) {
        this.#restarts++;
        this.#restartsBySlot.set(record.slot, record.restarts + 1);
      }
      if (record.readyAt === 0 && failed) this.emit('bootstrap-failure', record);
    }
    this.emit('worker-exit', record, code, reason);
    this.replenish();
  }

  #leaveReady(record: WorkerRecord): void {
    const index = this.#ready.indexOf(record);
    if (index !== -1) this.#ready.splice(index, 1);
  }
}
