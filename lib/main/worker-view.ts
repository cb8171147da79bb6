import type { Worker } from 'node:worker_threads';
import type { WorkerHandle, WorkerState, WorkerStatus } from './worker-handle.ts';

const views = new WeakMap<WorkerHandle, ServiceProxyAgent>();

/** What a user can read about one worker of a ServiceProxy: `proxy.agents`, and the workers' events. */
export class ServiceProxyAgent {
  readonly #handle: WorkerHandle;

  private constructor(handle: WorkerHandle) {
    this.#handle = handle;
  }

  /** The one view of `handle`, so that views of the same worker compare equal. */
  static of(handle: WorkerHandle): ServiceProxyAgent {
    let view = views.get(handle);
    if (!view) {
      view = new ServiceProxyAgent(handle);
      views.set(handle, view);
    }
    return view;
  }

  get worker(): Worker {
    return this.#handle.worker;
  }

  get threadId(): number {
    return this.#handle.threadId;
  }

  /** Unique within the proxy, in start order. */
  get id(): number {
    return this.#handle.id;
  }

  /** The pool position the worker fills: its replacement, after a crash or in a reload, takes it over. */
  get slot(): number {
    return this.#handle.slot;
  }

  /** Its life cycle: 'starting', 'ready', 'retiring', 'exited'. */
  get state(): WorkerState {
    return this.#handle.state;
  }

  /** What it is doing: as `state`, except that a ready worker is 'serving', or 'stalled' while its event loop is stuck. */
  get status(): WorkerStatus {
    return this.#handle.status;
  }

  /** Milliseconds since it last showed life (its event loop turned, or it began a request); undefined when stalls are not watched. */
  get heartbeatAgeMs(): number | undefined {
    return this.#handle.heartbeatAgeMs;
  }

  /** Open now: on their way to the worker or held by it. */
  get connections(): number {
    return this.#handle.connections;
  }

  /** Given to the worker since it started. */
  get totalConnections(): number {
    return this.#handle.account.given;
  }

  /** Times the worker in this slot died and was replaced before this one started. */
  get restarts(): number {
    return this.#handle.restarts;
  }

  /** `performance.now()` when the worker was started, and when it began serving (0 until then). */
  get startedAt(): number {
    return this.#handle.startedAt;
  }

  get readyAt(): number {
    return this.#handle.readyAt;
  }

  /** What ended the worker, if it threw or failed to load. */
  get error(): { name: string; message: string; stack?: string | undefined; code?: string | undefined } | undefined {
    return this.#handle.error as { name: string; message: string; code?: string } | undefined;
  }
}
