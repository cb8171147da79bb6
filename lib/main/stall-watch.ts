import type { Logger } from 'streams-logger';
import type { WorkerPool } from './pool.ts';
import { startSuccessor } from './succession.ts';
import type { WorkerRecord } from './worker-record.ts';

/** A worker whose loop has been quiet this long is stalled: it takes no new connection until it turns. */
export const STALL_MS = 1_000;
/** How often the heartbeats are read. */
const CHECK_INTERVAL_MS = 100;
/**
 * A check this late means the main thread, or the whole process, was held up: the heartbeats are
 * stale for that reason alone, so none is judged until the workers have had time to beat again.
 */
const LATE_CHECK_MS = 500;
const AFTER_LATE_CHECK_MS = 250;

export interface StallWatchSettings {
  /** A worker stalled this long is replaced. */
  stallTimeout: number;
  /** Grace for the open connections of a stalled worker that turned again before its successor served. */
  drainTimeout: number;
  log: Logger;
}

export interface StallCounters {
  /** Times a worker was taken out of rotation for a stalled event loop. */
  stalls: number;
  /** Stalled workers replaced, after `stallTimeout`. */
  stallRestarts: number;
}

function describe(record: WorkerRecord): string {
  return `Worker ${record.threadId} (slot ${record.slot})`;
}

/**
 * Reads the workers' heartbeats on a timer of the main thread. A worker that has not shown life for
 * STALL_MS leaves the pool's ready list, under every balancer, and comes back as soon as it turns
 * again; one stalled for `stallTimeout` is replaced: its successor starts in its slot, then the
 * stalled thread is stopped, losing the connections it held, which the ledger counts out on its exit.
 */
export class StallWatch {
  readonly counters: StallCounters = { stalls: 0, stallRestarts: 0 };
  readonly #pool: WorkerPool;
  readonly #settings: StallWatchSettings;
  #timer: NodeJS.Timeout | undefined;
  #lastCheck = 0;
  #judgeFrom = 0;

  constructor(pool: WorkerPool, settings: StallWatchSettings) {
    this.#pool = pool;
    this.#settings = settings;
  }

  start(): void {
    this.#lastCheck = performance.now();
    this.#timer = setInterval(() => this.#check(), CHECK_INTERVAL_MS).unref();
  }

  close(): void {
    clearInterval(this.#timer);
  }

  #check(): void {
    const now = performance.now();
    if (now - this.#lastCheck > LATE_CHECK_MS) this.#judgeFrom = now + AFTER_LATE_CHECK_MS;
    this.#lastCheck = now;
    if (now < this.#judgeFrom) return;
    for (const record of this.#pool.records) {
      const age = record.heartbeatAgeMs;
      if (age === undefined) continue;
      if (record.state === 'ready') this.#judge(record, age);
      else if (record.state === 'retiring' && age >= this.#settings.stallTimeout) this.#stop(record, age);
    }
  }

  #judge(record: WorkerRecord, age: number): void {
    const stalled = age >= STALL_MS;
    if (stalled !== record.stalled) {
      this.#pool.setStalled(record, stalled);
      if (stalled) {
        this.counters.stalls++;
        this.#settings.log.warn(
          `${describe(record)}: its event loop has not turned for ${age} ms; it takes no new connection until it does`,
        );
      } else {
        this.#settings.log.warn(`${describe(record)}: its event loop turns again; it takes connections again`);
      }
    }
    if (stalled && age >= this.#settings.stallTimeout && !record.replacing) void this.#replace(record);
  }

  async #replace(record: WorkerRecord): Promise<void> {
    this.counters.stallRestarts++;
    this.#settings.log.warn(
      `${describe(record)}: stalled for ${record.heartbeatAgeMs!} ms (stallTimeout); starting its successor`,
    );
    const successor = await startSuccessor(this.#pool, record);
    if (record.state === 'exited') return;
    const age = record.heartbeatAgeMs!;
    // Whether or not a successor could start, a thread still stalled serves no one.
    if (age >= STALL_MS) this.#stop(record, age);
    else if (successor) {
      this.#settings.log.warn(`${describe(record)} turned again while its successor started: it drains and stops`);
      this.#pool.retire(record, 'SIGTERM', this.#settings.drainTimeout);
    }
  }

  #stop(record: WorkerRecord, age: number): void {
    if (!record.endFor(`stalled: its event loop had not turned for ${age} ms`)) return;
    this.#settings.log.warn(`${describe(record)} is stopped: its event loop has not turned for ${age} ms`);
    this.#pool.retire(record, undefined, 0);
  }
}
