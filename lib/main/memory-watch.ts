import type { Logger } from 'streams-logger';
import type { WorkerPool } from './pool.ts';
import { startSuccessor } from './succession.ts';
import type { WorkerRecord } from './worker-record.ts';

const MB = 1024 * 1024;
/** How often each worker's heap is read. */
const CHECK_INTERVAL_MS = 1_000;
/** Readings over the limit in a row before a worker is recycled: one may be garbage about to be collected. */
const READINGS_OVER = 2;
/** A reading that takes longer than this is given up, so that one worker cannot hold up the checks. */
const READING_TIMEOUT_MS = 5_000;
/**
 * A worker that goes over the limit this soon after it replaced one recycled for its memory is
 * reported and left serving: recycling it again would only loop.
 */
export const RECYCLE_GUARD_MS = 60_000;

export interface MemoryWatchSettings {
  /** MB of V8 heap in use above which a worker is recycled. */
  maxMemoryRestart: number;
  /** Grace for the open connections of a recycled worker. */
  drainTimeout: number;
  log: Logger;
}

export interface MemoryCounters {
  /** Workers recycled for using more heap than maxMemoryRestart. */
  memoryRestarts: number;
  /** Workers over maxMemoryRestart within RECYCLE_GUARD_MS of replacing a recycled one: reported, not recycled. */
  memoryOverLimit: number;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms).unref();
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * Reads each serving worker's V8 heap in use (as stats() reports it) every CHECK_INTERVAL_MS. A
 * worker over `maxMemoryRestart` is recycled as in a rolling reload: its successor serves first,
 * then it drains within `drainTimeout` and stops, so no request fails.
 */
export class MemoryWatch {
  readonly counters: MemoryCounters = { memoryRestarts: 0, memoryOverLimit: 0 };
  readonly #pool: WorkerPool;
  readonly #settings: MemoryWatchSettings;
  readonly #limit: number;
  /** Readings over the limit in a row, by worker. */
  readonly #over = new WeakMap<WorkerRecord, number>();
  /** Workers started to replace one recycled for its memory. */
  readonly #successors = new WeakSet<WorkerRecord>();
  /** Workers reported instead of recycled, which are not recycled for their memory again. */
  readonly #reported = new WeakSet<WorkerRecord>();
  #timer: NodeJS.Timeout | undefined;
  #checking = false;

  constructor(pool: WorkerPool, settings: MemoryWatchSettings) {
    this.#pool = pool;
    this.#settings = settings;
    this.#limit = settings.maxMemoryRestart * MB;
  }

  start(): void {
    this.#timer = setInterval(() => void this.#check(), CHECK_INTERVAL_MS).unref();
  }

  close(): void {
    clearInterval(this.#timer);
  }

  async #check(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      const records = [...this.#pool.records].filter(
        (record) => record.status === 'serving' && !record.replacing && !this.#reported.has(record),
      );
      const readings = await Promise.all(records.map((record) => withTimeout(record.heapUsed(), READING_TIMEOUT_MS)));
      records.forEach((record, i) => this.#judge(record, readings[i]));
    } finally {
      this.#checking = false;
    }
  }

  #judge(record: WorkerRecord, heapUsed: number | undefined): void {
    if (heapUsed === undefined || heapUsed <= this.#limit) {
      this.#over.delete(record);
      return;
    }
    const over = (this.#over.get(record) ?? 0) + 1;
    this.#over.set(record, over);
    if (over < READINGS_OVER || record.status !== 'serving' || record.replacing) return;
    const what = `Worker ${record.threadId} (slot ${record.slot}) uses ${Math.round(heapUsed / MB)} MB of heap, over maxMemoryRestart (${this.#settings.maxMemoryRestart} MB)`;
    const uptime = performance.now() - record.startedAt;
    if (this.#successors.has(record) && uptime < RECYCLE_GUARD_MS) {
      this.#reported.add(record);
      this.counters.memoryOverLimit++;
      this.#settings.log.warn(
        `${what} ${Math.round(uptime / 1000)} s after it replaced a worker recycled for the same: it is left serving, not recycled again. ` +
          'The limit may be below what the app needs.',
      );
      return;
    }
    this.#settings.log.warn(`${what}: recycling it; its successor serves first`);
    void this.#recycle(record);
  }

  async #recycle(record: WorkerRecord): Promise<void> {
    const successor = await startSuccessor(this.#pool, record, (started) => this.#successors.add(started));
    if (!successor) {
      // Its successor could not start: it keeps serving, and is not tried again.
      this.#reported.add(record);
      this.#settings.log.warn(
        `Worker ${record.threadId} (slot ${record.slot}) could not be recycled: its successor did not start`,
      );
      return;
    }
    if (record.state !== 'ready') return;
    this.counters.memoryRestarts++;
    record.endFor('recycled: over maxMemoryRestart');
    this.#pool.retire(record, 'SIGTERM', this.#settings.drainTimeout);
  }
}
