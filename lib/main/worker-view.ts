import type { Worker } from 'node:worker_threads';
import type { Lifecycle, WorkerRecord, WorkerStatus } from './worker-record.ts';

const views = new WeakMap<WorkerRecord, WorkerView>();

/** What a user can read about one worker of a ServiceProxy: `proxy.agents`, and the workers' events. */
export class WorkerView {
  readonly #record: WorkerRecord;

  private constructor(record: WorkerRecord) {
    this.#record = record;
  }

  /** The one view of `record`, so that views of the same worker compare equal. */
  static of(record: WorkerRecord): WorkerView {
    let view = views.get(record);
    if (!view) {
      view = new WorkerView(record);
      views.set(record, view);
    }
    return view;
  }

  get worker(): Worker {
    return this.#record.worker;
  }

  get threadId(): number {
    return this.#record.threadId;
  }

  /** Unique within the proxy, in start order. */
  get id(): number {
    return this.#record.id;
  }

  /** The pool position the worker fills: its replacement, after a crash or in a reload, takes it over. */
  get slot(): number {
    return this.#record.slot;
  }

  /** Its life cycle: 'starting', 'ready', 'retiring', 'exited'. */
  get state(): Lifecycle {
    return this.#record.state;
  }

  /** What it is doing: as `state`, except that a ready worker is 'serving', or 'stalled' while its event loop is stuck. */
  get status(): WorkerStatus {
    return this.#record.status;
  }

  /** Milliseconds since it last showed life (its event loop turned, or it began a request); undefined when stalls are not watched. */
  get heartbeatAgeMs(): number | undefined {
    return this.#record.heartbeatAgeMs;
  }

  /** Open now: on their way to the worker or held by it. */
  get connections(): number {
    return this.#record.connections;
  }

  /** Given to the worker since it started. */
  get totalConnections(): number {
    return this.#record.account.given;
  }

  /** Times the worker in this slot died and was replaced before this one started. */
  get restarts(): number {
    return this.#record.restarts;
  }

  /** `performance.now()` when the worker was started, and when it began serving (0 until then). */
  get startedAt(): number {
    return this.#record.startedAt;
  }

  get readyAt(): number {
    return this.#record.readyAt;
  }

  /** What ended the worker, if it threw or failed to load. */
  get error(): { name: string; message: string; stack?: string | undefined; code?: string | undefined } | undefined {
    return this.#record.error as { name: string; message: string; code?: string } | undefined;
  }
}
