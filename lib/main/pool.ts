import { EventEmitter } from 'node:events';
import type { WorkerOptions } from 'node:worker_threads';
import type { Logger } from 'streams-logger';
import { acceptWorkerLogRecord } from '../logging.ts';
import type { FromWorker, ToWorker, WorkerBootData } from '../protocol/messages.ts';
import { Heartbeat } from './heartbeat.ts';
import { RestartBackoff } from './restart-backoff.ts';
import { replaceEach } from './succession.ts';
import { startWorker, type WorkerHandle } from './worker-handle.ts';

export interface PoolSettings {
  minWorkers: number;
  maxWorkers: number;
  workerOptions: WorkerOptions;
  workerStartTimeout: number;
  /** Workers above minWorkers idle this long are retired; also how often that is checked. */
  idleTimeout: number;
  boot: (id: number, slot: number) => Omit<WorkerBootData, 'port' | 'heartbeat'>;
  /** Give each worker a heartbeat, by which a stalled one is told (see stall-watch.ts). */
  heartbeats?: boolean;
  log: Logger;
  /** Starts the thread; tests give a stand-in. */
  spawn?: typeof startWorker;
}

export { HEALTHY_UPTIME_MS, RESTART_BASE_DELAY_MS, RESTART_FACTOR, RESTART_MAX_DELAY_MS } from './restart-backoff.ts';
/** How long a finished worker may take to end itself, running its 'exit' listeners, before it is stopped. */
const EXIT_GRACE_MS = 1_000;

/**
 * Starts, tracks, reaps and replaces worker threads. Emits 'worker-ready' (handle), 'worker-stalled'
 * (handle), 'worker-resumed' (handle, once a stalled one turns again), 'worker-retiring' (handle),
 * 'worker-exit' (handle, code, reason), 'bootstrap-failure' (handle), and passes on what workers report:
 * 'connections-closed' (handle, message), 'proxy-header-rejected', 'handoff-latency' (seconds),
 * 'listen' (handle, request, listen), 'unlisten' (handle, listener) and 'listener-returned' (handle, server).
 */
export class WorkerPool extends EventEmitter {
  /** Every worker not yet exited, in start order. */
  readonly #handles = new Set<WorkerHandle>();
  /** The workers that can take a connection now: ready, and not stalled. The balancer picks among these. */
  readonly #ready: WorkerHandle[] = [];
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

  get handles(): ReadonlySet<WorkerHandle> {
    return this.#handles;
  }

  get ready(): readonly WorkerHandle[] {
    return this.#ready;
  }

  get size(): number {
    return this.#handles.size;
  }

  /** Workers that died unexpectedly and were replaced. */
  get restarts(): number {
    return this.#restarts;
  }

  get starting(): number {
    return [...this.#handles].filter((handle) => handle.state === 'starting').length;
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
  grow(successorOf?: WorkerHandle): WorkerHandle | undefined {
    if (this.#closed || (!successorOf && this.#handles.size >= this.#settings.maxWorkers)) return undefined;
    const id = ++this.#nextId;
    const slot = successorOf?.slot ?? this.#freeSlot();
    const heartbeat = this.#settings.heartbeats ? new Heartbeat() : undefined;
    const boot = { ...this.#settings.boot(id, slot), heartbeat: heartbeat?.buffer };
    const handle = this.#spawn(id, slot, this.#restartsBySlot.get(slot) ?? 0, boot, this.#settings.workerOptions);
    handle.heartbeat = heartbeat;
    handle.successor = successorOf !== undefined;
    this.#handles.add(handle);
    handle.account.onIdle = () => this.#stopIfDrained(handle);
    const startTimer = setTimeout(() => {
      if (handle.state !== 'starting') return;
      this.#settings.log.error(
        `Worker ${handle.threadId} did not start serving within ${this.#settings.workerStartTimeout} ms`,
      );
      void handle.worker.terminate();
    }, this.#settings.workerStartTimeout).unref();

    handle.port.on('message', (message: FromWorker) => this.#onMessage(handle, message));
    handle.worker.on('error', (err) => {
      handle.uncaughtError = err;
    });
    handle.worker.once('exit', (code) => {
      clearTimeout(startTimer);
      this.#onExit(handle, code);
    });
    return handle;
  }

  /** A connection waits for a worker and none can take it: start one, unless one is starting; after failures, once the backoff allows. */
  growForWaiting(): void {
    if (this.starting === 0) this.#afterBackoff(() => this.starting === 0 && this.grow());
  }

  /** Every ready worker holds connections: start another while below maxWorkers, one at a time. */
  growIfAllBusy(): void {
    if (this.starting > 0 || this.#handles.size >= this.#settings.maxWorkers) return;
    for (const handle of this.#ready) if (handle.connections === 0) return;
    this.grow();
  }

  /** Keeps at least `minWorkers` alive, restarting after failures with exponential backoff. */
  replenish(): void {
    if (this.#handles.size >= this.#settings.minWorkers) return;
    this.#afterBackoff(() => {
      for (let i = this.#handles.size; i < this.#settings.minWorkers; i++) this.grow();
    });
  }

  /** Runs `start` now or, after failures, once the backoff delay has passed; one wait at a time. */
  #afterBackoff(start: () => void): void {
    if (!this.#closed) this.#backoff.run(start);
  }

  #freeSlot(): number {
    const taken = new Set<number>();
    for (const handle of this.#handles) if (handle.state !== 'retiring') taken.add(handle.slot);
    let slot = 0;
    while (taken.has(slot)) slot++;
    return slot;
  }

  /**
   * Stops giving `handle` connections and lets it finish them, emitting `signal` to the app's own
   * listeners in the worker first; after `timeout` ms, if given, it is stopped.
   */
  retire(handle: WorkerHandle, signal: NodeJS.Signals | undefined, timeout?: number): void {
    this.#leaveReady(handle);
    if (handle.state !== 'exited') this.emit('worker-retiring', handle);
    handle.retire(signal);
    if (timeout === undefined || handle.state === 'exited') return;
    const deadline = setTimeout(() => void handle.worker.terminate(), timeout).unref();
    void handle.exited.then(() => clearTimeout(deadline));
  }

  /** A stalled worker takes no connection; it takes them again, and those waiting, once it turns again. */
  setStalled(handle: WorkerHandle, stalled: boolean): void {
    if (handle.stalled === stalled) return;
    handle.stalled = stalled;
    if (stalled) {
      this.#leaveReady(handle);
      this.emit('worker-stalled', handle);
      return;
    }
    if (handle.state !== 'ready') return;
    this.#ready.push(handle);
    this.emit('worker-resumed', handle);
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
    const handles = [...this.#handles];
    for (const handle of handles) this.retire(handle, signal, timeout);
    await Promise.all(handles.map((handle) => handle.exited));
    const results = await Promise.allSettled(handles.map((handle) => handle.worker.terminate()));
    await Promise.all(handles.map((handle) => handle.portClosed));
    return results;
  }

  #reapIdleWorkers(): void {
    const now = performance.now();
    for (const handle of [...this.#ready]) {
      if (this.#ready.length <= this.#settings.minWorkers) return;
      if (handle.connections === 0 && now - handle.account.idleSince >= this.#settings.idleTimeout) {
        this.#settings.log.debug(`Retiring idle worker ${handle.threadId}`);
        this.retire(handle, 'SIGTERM');
      }
    }
  }

  #onMessage(handle: WorkerHandle, message: FromWorker): void {
    switch (message.type) {
      case 'closed':
        this.emit('connections-closed', handle, message);
        break;
      case 'proxy-header-rejected':
        this.emit('proxy-header-rejected');
        break;
      case 'listen':
        this.emit('listen', handle, message.request, message.listen);
        break;
      case 'unlisten':
        this.emit('unlisten', handle, message.listener);
        break;
      case 'handoff-latencies':
        for (const seconds of message.seconds) this.emit('handoff-latency', seconds);
        break;
      case 'log':
        acceptWorkerLogRecord(message.record);
        break;
      case 'ready':
        if (handle.state !== 'starting') break;
        handle.markReady();
        this.#ready.push(handle);
        this.emit('worker-ready', handle);
        break;
      case 'stopped':
        if (handle.state === 'ready') {
          handle.state = 'retiring';
          this.emit('worker-retiring', handle);
        }
        this.#leaveReady(handle);
        break;
      case 'drained':
        handle.drained = true;
        this.#stopIfDrained(handle);
        break;
      case 'listener':
        this.emit('listener-returned', handle, message.server);
        break;
      case 'bootstrap-error':
        handle.bootstrapError = message.error;
        break;
    }
  }

  // With the pipe transport a connection can be on its way over the worker's Unix socket after the
  // worker said it was drained: the worker ends only once the main thread counts none either. It
  // ends itself, so that its app's 'exit' listeners run; one that does not is stopped.
  #stopIfDrained(handle: WorkerHandle): void {
    if (!handle.drained || handle.connections !== 0 || handle.state === 'exited' || handle.exitRequested) return;
    handle.exitRequested = true;
    handle.port.postMessage({ type: 'exit' } satisfies ToWorker);
    const backstop = setTimeout(() => void handle.worker.terminate(), EXIT_GRACE_MS).unref();
    void handle.exited.then(() => clearTimeout(backstop));
  }

  #onExit(handle: WorkerHandle, code: number): void {
    const failed = handle.state === 'starting' || (handle.state === 'ready' && !this.#closed);
    const reason = handle.exitReason(failed, code);
    handle.markExited(reason);
    this.#handles.delete(handle);
    this.#leaveReady(handle);
    handle.port.close();
    // A successor that never served (code that fails to load, at a reload) is no crash of the pool.
    if (!handle.successor || handle.readyAt !== 0) {
      this.#backoff.record(failed, handle.readyAt ? performance.now() - handle.readyAt : 0);
      if (failed) {
        this.#restarts++;
        this.#restartsBySlot.set(handle.slot, handle.restarts + 1);
      }
      if (handle.readyAt === 0 && failed) this.emit('bootstrap-failure', handle);
    }
    this.emit('worker-exit', handle, code, reason);
    this.replenish();
  }

  #leaveReady(handle: WorkerHandle): void {
    const index = this.#ready.indexOf(handle);
    if (index !== -1) this.#ready.splice(index, 1);
  }
}
