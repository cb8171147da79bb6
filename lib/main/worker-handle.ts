import type { EventLoopUtilization } from 'node:perf_hooks';
import { MessageChannel, Worker, type MessagePort, type WorkerOptions } from 'node:worker_threads';
import { ERR_WORKER_EXITED } from '../errors.ts';
import type { SerializedError, ToWorker, WorkerBootData } from '../protocol/messages.ts';
import type { Heartbeat } from './heartbeat.ts';
import { WorkerAccount } from './ledger.ts';

export type WorkerState = 'starting' | 'ready' | 'retiring' | 'exited';
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

/** Starts a worker thread on the bootstrap, with its own channel to the main thread. */
export function startWorker(
  id: number,
  slot: number,
  restarts: number,
  boot: Omit<WorkerBootData, 'port'>,
  workerOptions: WorkerOptions,
): WorkerHandle {
  const { port1, port2 } = new MessageChannel();
  const data: WorkerBootData = { ...boot, port: port2, userWorkerData: workerOptions.workerData };
  const worker = new Worker(bootstrapURL, {
    ...workerOptions,
    workerData: data,
    transferList: [...(workerOptions.transferList ?? []), port2],
  });
  return new WorkerHandle(id, slot, restarts, worker, port1);
}

/** The main thread's record of one worker thread: its channel, its state and its account of connections. */
export class WorkerHandle {
  readonly id: number;
  /** The pool position this worker fills; a replacement takes the slot of the worker it replaces. */
  readonly slot: number;
  /** How many times this slot's worker died and was replaced before this one started. */
  readonly restarts: number;
  readonly threadId: number;
  readonly worker: Worker;
  readonly port: MessagePort;
  readonly startedAt = performance.now();
  readonly account = new WorkerAccount();
  state: WorkerState = 'starting';
  readyAt = 0;
  bootstrapError: SerializedError | undefined;
  uncaughtError: Error | undefined;
  /** The worker said it has no connection left; it stops once none is on its way either. */
  drained = false;
  /** It was told to end. */
  exitRequested = false;
  /** Read by the main thread to see when the worker last showed life; undefined when stalls are not watched. */
  heartbeat: Heartbeat | undefined;
  /** Its event loop has not turned for a while: it takes no new connection until it does. */
  stalled = false;
  /** A successor is starting in its slot, to replace it (stalled, or over its memory limit). */
  replacing = false;
  /** It was started to replace another, in that one's slot. */
  successor = false;
  /** Why it was stopped, when the pool stopped it for a reason of its own. */
  endReason: string | undefined;
  /** Settles once the channel to the worker has closed, after the worker exited. */
  readonly portClosed: Promise<void>;
  /** Settles once the worker thread has exited, whatever it threw on the way. */
  readonly exited: Promise<void>;
  /** Resolves once the worker serves; rejects if it exits first. */
  readonly serving: Promise<void>;
  #settleServing: ((error?: Error) => void) | undefined;
  readonly #eluMarks = new Map<string, { reading: EventLoopUtilization; value: number }>();

  constructor(id: number, slot: number, restarts: number, worker: Worker, port: MessagePort) {
    this.id = id;
    this.slot = slot;
    this.restarts = restarts;
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
  }

  /** The worker said it serves. */
  markReady(): void {
    this.state = 'ready';
    this.readyAt = performance.now();
    this.#settleServing?.();
    this.#settleServing = undefined;
  }

  /** The worker thread is gone; `reason` says why, for whoever waited for it to serve. */
  markExited(reason: string): void {
    this.state = 'exited';
    this.#settleServing?.(new ERR_WORKER_EXITED(String(this.threadId), reason));
    this.#settleServing = undefined;
  }

  /** Milliseconds since the worker last showed life; undefined when stalls are not watched. */
  get heartbeatAgeMs(): number | undefined {
    // An exited worker's loop reads as never run: its last reading stands.
    return this.heartbeat?.ageMs(
      this.state === 'exited' ? undefined : this.worker.performance.eventLoopUtilization().idle,
    );
  }

  get status(): WorkerStatus {
    if (this.state !== 'ready') return this.state;
    return this.stalled ? 'stalled' : 'serving';
  }

  /** Why the worker exited, for the log and the 'worker-exit' event. */
  exitReason(failed: boolean, code: number): string {
    const error = this.error;
    if (!failed) return this.endReason ?? 'retired';
    if (this.readyAt === 0 && error) return `failed to load: ${error.message}`;
    return error ? `threw: ${error.message}` : `exited unexpectedly with code ${code}`;
  }

  /** Open connections given to this worker: on their way or held. */
  get connections(): number {
    return this.account.connections;
  }

  /** What ended the worker, if it threw or failed to load. */
  get error(): SerializedError | Error | undefined {
    return this.bootstrapError ?? this.uncaughtError;
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
    if (this.state === 'exited' || typeof worker.getHeapStatistics !== 'function') return undefined;
    return (await worker.getHeapStatistics().catch(() => undefined))?.used_heap_size;
  }

  retire(signal: NodeJS.Signals | undefined): void {
    if (this.state === 'exited') return;
    this.state = 'retiring';
    const message: ToWorker = { type: 'retire', signal };
    this.port.postMessage(message);
  }
}
