import type { EventLoopUtilization } from 'node:perf_hooks';
import { MessageChannel, type MessagePort, Worker, type WorkerOptions } from 'node:worker_threads';
import { ERR_WORKER_EXITED } from '../errors.ts';
import type { SerializedError, ToWorker, WorkerBootData } from '../protocol/messages.ts';
import type { OwnConnections } from '../transports/index.ts';
import type { Heartbeat } from './heartbeat.ts';
import { WorkerAccount } from './ledger.ts';

/** A worker's life, in order: it starts, serves, may retire, and exits. */
export type Lifecycle = 'starting' | 'ready' | 'retiring' | 'exited';
/** What a worker is doing, as users see it: a ready worker serves, or is stalled. */
export type WorkerStatus = 'starting' | 'serving' | 'stalled' | 'retiring' | 'exited';

const bootstrapURL = new URL('../worker/bootstrap.js', import.meta.url);

/**
 * The worker's idle time and the clock are read at slightly different instants, which skews a very
 * short interval: below this, the last value stands until the interval is long enough to mean something.
 */
const MIN_ELU_INTERVAL_MS = 1;

function clampRatio(value: number): number {
  return Math.min(1, Math.max(0, value));
}

/** Why a worker took another's slot: a rolling reload, or recycling one stalled or over its memory limit. */
export type Succession = 'reload' | 'recycle';

/** What the pool knows of a worker when it starts one. */
export interface WorkerOrigin {
  id: number;
  /** The pool position this worker fills; a replacement takes the slot of the worker it replaces. */
  slot: number;
  /** How many times this slot's worker died and was replaced before this one started. */
  restarts: number;
  /** Started to replace another worker in that one's slot: in a rolling reload, or to recycle one. */
  succession: Succession | undefined;
  /** Read by the main thread to see when the worker last showed life; undefined when stalls are not watched. */
  heartbeat: Heartbeat | undefined;
}

/** Starts a worker thread on the bootstrap, with its own channel to the main thread. */
export function startWorker(
  origin: WorkerOrigin,
  boot: Omit<WorkerBootData, 'port'>,
  workerOptions: WorkerOptions,
): WorkerRecord {
  const { port1, port2 } = new MessageChannel();
  const data: WorkerBootData = { ...boot, port: port2, userWorkerData: workerOptions.workerData };
  const worker = new Worker(bootstrapURL, {
    ...workerOptions,
    workerData: data,
    transferList: [...(workerOptions.transferList ?? []), port2],
  });
  return new WorkerRecord(origin, worker, port1);
}

/**
 * The main thread's record of one worker thread: its channel, its life and its account of
 * connections. Its state changes only through its own methods; the rest of the main thread reads it.
 */
export class WorkerRecord {
  readonly id: number;
  readonly slot: number;
  readonly restarts: number;
  readonly succession: Succession | undefined;
  readonly heartbeat: Heartbeat | undefined;
  readonly threadId: number;
  readonly worker: Worker;
  readonly port: MessagePort;
  readonly startedAt = performance.now();
  readonly account = new WorkerAccount();
  /** Settles once the channel to the worker has closed, after the worker exited. */
  readonly portClosed: Promise<void>;
  /** Settles once the worker thread has exited, whatever it threw on the way. */
  readonly exited: Promise<void>;
  /** Resolves once the worker serves; rejects if it exits first. */
  readonly serving: Promise<void>;
  #state: Lifecycle = 'starting';
  #readyAt = 0;
  #stalled = false;
  #replacing = false;
  #drained = false;
  #endAllowed = false;
  /** The shutdown timeout it was told to end at, once it was. */
  #endedAtDeadline: number | undefined;
  #endReason: string | undefined;
  #bootstrapError: SerializedError | undefined;
  #uncaughtError: Error | undefined;
  #settleServing: ((error?: Error) => void) | undefined;
  readonly #eluMarks = new Map<string, { reading: EventLoopUtilization; value: number }>();

  constructor(origin: WorkerOrigin, worker: Worker, port: MessagePort) {
    this.id = origin.id;
    this.slot = origin.slot;
    this.restarts = origin.restarts;
    this.succession = origin.succession;
    this.heartbeat = origin.heartbeat;
    this.worker = worker;
    this.port = port;
    this.threadId = worker.threadId;
    this.portClosed = new Promise((resolve) => port.once('close', () => resolve()));
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    this.serving = new Promise((resolve, reject) => {
      this.#settleServing = (error) => (error ? reject(error) : resolve());
    });
    // Nobody need wait for it; an exit before serving is reported by the pool's events too.
    this.serving.catch(() => {});
    worker.on('error', (err) => {
      this.#uncaughtError = err;
    });
  }

  get state(): Lifecycle {
    return this.#state;
  }

  /** `performance.now()` when it began serving; 0 until then. */
  get readyAt(): number {
    return this.#readyAt;
  }

  /** Its event loop has not turned for a while: it takes no new connection until it does. */
  get stalled(): boolean {
    return this.#stalled;
  }

  /** A successor is starting in its slot, to replace it (stalled, or over its memory limit). */
  get replacing(): boolean {
    return this.#replacing;
  }

  /** The worker said it has no connection left; it stops once none is on its way either. */
  get drained(): boolean {
    return this.#drained;
  }

  /** It was told it may end, once its app's own work is done. */
  get endAllowed(): boolean {
    return this.#endAllowed;
  }

  /** The timeout, in ms, at which it was told to end now; undefined unless it was. */
  get endedAtDeadline(): number | undefined {
    return this.#endedAtDeadline;
  }

  /** Why it was stopped, when the pool stopped it for a reason of its own. */
  get endReason(): string | undefined {
    return this.#endReason;
  }

  get status(): WorkerStatus {
    if (this.#state !== 'ready') return this.#state;
    return this.#stalled ? 'stalled' : 'serving';
  }

  /** What ended the worker, if it threw or failed to load. */
  get error(): SerializedError | Error | undefined {
    return this.#bootstrapError ?? this.#uncaughtError;
  }

  /** What it threw, if it did, once serving. */
  get uncaughtError(): Error | undefined {
    return this.#uncaughtError;
  }

  /** Open connections given to this worker: on their way or held. */
  get connections(): number {
    return this.account.connections;
  }

  /** Milliseconds since the worker last showed life; undefined when stalls are not watched. */
  get heartbeatAgeMs(): number | undefined {
    // An exited worker's loop reads as never run: its last reading stands.
    return this.heartbeat?.ageMs(
      this.#state === 'exited' ? undefined : this.worker.performance.eventLoopUtilization().idle,
    );
  }

  /**
   * Moves the worker on in its life: to 'ready' once, from 'starting'; to 'retiring' from either of
   * those; to 'exited' from anywhere, `reason` saying why to whoever waits for it to serve. Returns
   * whether the state changed.
   */
  transition(state: Exclude<Lifecycle, 'starting'>, reason = ''): boolean {
    const from = this.#state;
    if (from === 'exited' || from === state) return false;
    if (state === 'ready' && from !== 'starting') return false;
    this.#state = state;
    if (state === 'ready') {
      this.#readyAt = performance.now();
      this.#settle();
    }
    if (state === 'exited') this.#settle(new ERR_WORKER_EXITED(String(this.threadId), reason));
    return true;
  }

  /** Returns whether it changed. */
  setStalled(stalled: boolean): boolean {
    if (this.#stalled === stalled) return false;
    this.#stalled = stalled;
    return true;
  }

  markDrained(): void {
    this.#drained = true;
  }

  bootstrapFailed(error: SerializedError): void {
    this.#bootstrapError = error;
  }

  /** A successor starts in its slot; `replacing` is false again if it did not come to serve. */
  replacementStarted(): void {
    this.#replacing = true;
  }

  replacementEnded(replaced: boolean): void {
    this.#replacing = replaced;
  }

  /** Names why the pool stops it; the first reason given stands. Returns whether this one did. */
  endFor(reason: string): boolean {
    if (this.#endReason !== undefined) return false;
    this.#endReason = reason;
    return true;
  }

  /** The connections it accepts itself, where workers do (reuseport), count as its own. */
  countOwnConnections(own: OwnConnections | undefined): void {
    this.account.own = own;
  }

  send(message: ToWorker, transfer?: never[]): void {
    if (this.#state !== 'exited') this.port.postMessage(message, transfer);
  }

  /**
   * Stops giving it connections: it closes its keep-alive ones after their answers, emits `signal` to
   * the app's listeners, then finishes the open ones. It is told once the connections on their way to it (piped ones still connecting) have
   * reached it, so that they reach its app's server before the app closes it, not after.
   */
  retire(signal: NodeJS.Signals | undefined): void {
    if (this.#state === 'exited') return;
    this.#state = 'retiring';
    const tell = (): void => {
      this.account.onArrived = undefined;
      this.send({ type: 'retire', signal });
    };
    if (this.account.pending === 0) tell();
    else this.account.onArrived = tell;
  }

  /** Tells a drained worker it may end once its app's own work is done, once. */
  allowEnd(): void {
    if (this.#endAllowed || this.#state === 'exited') return;
    this.#endAllowed = true;
    this.send({ type: 'may-end' });
  }

  /** Its `timeout` has passed: tells it to end now, once; returns whether it was told now. */
  endAtDeadline(timeout: number): boolean {
    if (this.#endedAtDeadline !== undefined || this.#state === 'exited') return false;
    this.#endedAtDeadline = timeout;
    this.send({ type: 'end' });
    return true;
  }

  /** Why the worker exited, for the log and the 'worker-exit' event. */
  exitReason(failed: boolean, code: number): string {
    const error = this.error;
    if (!failed) return this.#endReason ?? 'retired';
    if (this.#readyAt === 0 && error) return `failed to load: ${error.message}`;
    return error ? `threw: ${error.message}` : `exited unexpectedly with code ${code}`;
  }

  /**
   * The share of time the worker's event loop was busy since the last call with the same `mark`
   * (or since it started), over at least `minInterval` ms: a call sooner repeats the last value.
   * Read from the main thread without asking the worker.
   */
  eventLoopUtilization(mark: string, minInterval = MIN_ELU_INTERVAL_MS): number {
    const performance = this.worker.performance;
    const now = performance.eventLoopUtilization();
    const previous = this.#eluMarks.get(mark);
    if (!previous) {
      this.#eluMarks.set(mark, { reading: now, value: clampRatio(now.utilization) });
      return clampRatio(now.utilization);
    }
    const delta = performance.eventLoopUtilization(now, previous.reading);
    if (delta.idle + delta.active < Math.max(minInterval, MIN_ELU_INTERVAL_MS)) return previous.value;
    const value = clampRatio(delta.utilization);
    this.#eluMarks.set(mark, { reading: now, value });
    return value;
  }

  /** Bytes of V8 heap in use, where the runtime can tell from outside the worker. */
  async heapUsed(): Promise<number | undefined> {
    const worker = this.worker as Worker & { getHeapStatistics?: () => Promise<{ used_heap_size: number }> };
    if (this.#state === 'exited' || typeof worker.getHeapStatistics !== 'function') return undefined;
    return (await worker.getHeapStatistics().catch(() => undefined))?.used_heap_size;
  }

  #settle(error?: Error): void {
    this.#settleServing?.(error);
    this.#settleServing = undefined;
  }
}

/** The warning for a worker stopped at its deadline while `resources` (as Node names them) were pending. */
export function pendingAtDeadline(record: WorkerRecord, resources: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const name of resources) counts.set(name, (counts.get(name) ?? 0) + 1);
  const named = [...counts].map(([name, count]) => (count > 1 ? `${name} ×${count}` : name)).join(', ');
  return (
    `Worker ${record.threadId} (slot ${record.slot}) was stopped at the shutdown timeout ` +
    `(${record.endedAtDeadline} ms) with work still pending: ${named || 'none that Node names'}`
  );
}

/** How a worker's exit is logged: at debug when it was expected, or `reportedElsewhere`. */
export function exitReport(
  record: WorkerRecord,
  code: number,
  reason: string,
  reportedElsewhere: boolean,
): { level: 'debug' | 'warn'; message: string } {
  const expected = reason === 'retired' || record.endReason !== undefined;
  // A crash of a serving worker is logged with its stack, as Node prints an uncaught error.
  const stack = record.readyAt !== 0 && !expected ? record.uncaughtError?.stack : undefined;
  return {
    level: expected || reportedElsewhere ? 'debug' : 'warn',
    message: `Worker ${record.threadId} (slot ${record.slot}) exited (code ${code}): ${reason}${stack ? `\n${stack}` : ''}`,
  };
}
