import type { Logger } from 'streams-logger';
import { MemoryWatch, type MemoryCounters } from './memory-watch.ts';
import type { WorkerPool } from './pool.ts';
import { StallWatch, type StallCounters } from './stall-watch.ts';
import type { WorkerRecord, WorkerStatus } from './worker-record.ts';

/** How recently a worker must have shown life for the process to be live, when stalls are not watched. */
const LIVE_WINDOW_MS = 30_000;

export interface WorkerHealthSettings {
  minWorkers: number;
  /** 0 when stalls are not watched. */
  stallTimeout: number;
  maxMemoryRestart: number | undefined;
  drainTimeout: number;
  log: Logger;
}

export type HealthCounters = StallCounters & MemoryCounters;

/** One worker, as the probes report it. */
export interface WorkerHealthEntry {
  slot: number;
  threadId: number;
  status: WorkerStatus;
  /** Milliseconds since it last showed life (its event loop turned, or it began a request); undefined when stalls are not watched. */
  heartbeatAgeMs: number | undefined;
}

/** What `/ready` and `/live` answer. */
export interface HealthReport {
  /** At least `minWorkers` workers (and at least one) serve, the port is open, and the proxy is not stopping. */
  ready: boolean;
  /** The main thread answers and its port is open (or it is stopping), and a worker showed life within `stallTimeout`. */
  live: boolean;
  stopping: boolean;
  /** Workers serving: ready, and not stalled. */
  serving: number;
  minWorkers: number;
  workers: WorkerHealthEntry[];
}

/**
 * The health of the pool's workers: the stall and memory watches, as configured, and what the
 * probes report of them.
 */
export class WorkerHealth {
  readonly #pool: WorkerPool;
  readonly #settings: WorkerHealthSettings;
  readonly #stalls: StallWatch | undefined;
  readonly #memory: MemoryWatch | undefined;
  /** When a worker that had served last showed life. */
  #lastLiveAt = performance.now();

  constructor(pool: WorkerPool, settings: WorkerHealthSettings) {
    this.#pool = pool;
    this.#settings = settings;
    const { stallTimeout, maxMemoryRestart, drainTimeout, log } = settings;
    this.#stalls = stallTimeout > 0 ? new StallWatch(pool, { stallTimeout, drainTimeout, log }) : undefined;
    this.#memory =
      maxMemoryRestart !== undefined ? new MemoryWatch(pool, { maxMemoryRestart, drainTimeout, log }) : undefined;
    pool.on('worker-exit', (record: WorkerRecord) => this.#sawLife(record, performance.now()));
  }

  start(): void {
    this.#stalls?.start();
    this.#memory?.start();
  }

  close(): void {
    this.#stalls?.close();
    this.#memory?.close();
  }

  get counters(): HealthCounters {
    return {
      stalls: 0,
      stallRestarts: 0,
      memoryRestarts: 0,
      memoryOverLimit: 0,
      ...this.#stalls?.counters,
      ...this.#memory?.counters,
    };
  }

  report(stopping: boolean, listening: boolean): HealthReport {
    const now = performance.now();
    const workers: WorkerHealthEntry[] = [];
    for (const record of this.#pool.records) {
      if (record.state === 'ready' || record.state === 'retiring') this.#sawLife(record, now);
      workers.push({
        slot: record.slot,
        threadId: record.threadId,
        status: record.status,
        heartbeatAgeMs: record.heartbeatAgeMs,
      });
    }
    const { minWorkers, stallTimeout } = this.#settings;
    // A pool allowed to shrink to nothing and left idle is as it should be.
    if (minWorkers === 0 && this.#pool.size === 0) this.#lastLiveAt = now;
    const serving = this.#pool.ready.length;
    return {
      ready: !stopping && listening && serving >= Math.max(1, minWorkers),
      live: (stopping || listening) && now - this.#lastLiveAt < (stallTimeout || LIVE_WINDOW_MS),
      stopping,
      serving,
      minWorkers,
      workers,
    };
  }

  #sawLife(record: WorkerRecord, now: number): void {
    if (record.readyAt === 0) return;
    this.#lastLiveAt = Math.max(this.#lastLiveAt, now - (record.heartbeatAgeMs ?? 0));
  }
}
