import type { EventLoopUtilization } from 'node:perf_hooks';
import { MessageChannel, Worker, type MessagePort, type WorkerOptions } from 'node:worker_threads';
import type { SerializedError, WorkerBootData } from './messages.ts';

export type WorkerState = 'starting' | 'ready' | 'retiring' | 'exited';

const bootstrapURL = new URL('./worker/bootstrap.js', import.meta.url);

const MIN_ELU_INTERVAL_MS = 1;

function clampRatio(value: number): number {
  return Math.min(1, Math.max(0, value));
}

/** The main thread's record of one worker thread: its channel, its state and its open connections. */
export class WorkerHandle {
  readonly id: number;
  /** The pool position this worker fills; a replacement takes the slot of the worker it replaces. */
  readonly slot: number;
  /** How many times this slot's worker died and was replaced before this one started. */
  readonly restarts: number;
  readonly threadId: number;
  readonly worker: Worker;
  readonly port: MessagePort;
  readonly pipePath: string | undefined;
  readonly startedAt = performance.now();
  state: WorkerState = 'starting';
  readyAt = 0;
  /** Connections given to this worker that it has not yet reported closed. */
  connections = 0;
  totalConnections = 0;
  /** Client addresses of the open connections, kept only under a per-address limit. */
  peers: Map<string, number> | undefined;
  /** When `connections` last dropped to zero, for idle reaping. */
  idleSince = performance.now();
  bootstrapError: SerializedError | undefined;
  uncaughtError: Error | undefined;
  /** The worker said it has no connection left; it stops once none is on its way either. */
  drained = false;
  /** Settles once the channel to the worker has closed, after the worker exited. */
  readonly portClosed: Promise<void>;
  /** Settles once the worker thread has exited, whatever it threw on the way. */
  readonly exited: Promise<void>;
  readonly #eluMarks = new Map<string, { reading: EventLoopUtilization; value: number }>();

  constructor(id: number, slot: number, restarts: number, boot: Omit<WorkerBootData, 'port'>, workerOptions: WorkerOptions) {
    this.id = id;
    this.slot = slot;
    this.restarts = restarts;
    this.pipePath = boot.pipePath;
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.portClosed = new Promise((resolve) => port1.once('close', () => resolve()));
    const data: WorkerBootData = { ...boot, port: port2, userWorkerData: workerOptions.workerData };
    this.worker = new Worker(bootstrapURL, {
      ...workerOptions,
      workerData: data,
      transferList: [...(workerOptions.transferList ?? []), port2],
    });
    this.threadId = this.worker.threadId;
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
  }


  /**
   * The share of time the worker's event loop was busy since the last call with the same `mark`
   * (or since it started). Read from the main thread without asking the worker.
   */
  eventLoopUtilization(mark: string): number {
    const performance = this.worker.performance;
    const now = performance.eventLoopUtilization();
    const previous = this.#eluMarks.get(mark);
    if (!previous) {
      this.#eluMarks.set(mark, { reading: now, value: clampRatio(now.utilization) });
      return clampRatio(now.utilization);
    }
    const delta = performance.eventLoopUtilization(now, previous.reading);
    // The worker's idle time and the clock are read at slightly different instants, which skews a
    // very short interval; the last value stands until the interval is long enough to mean something.
    if (delta.idle + delta.active < MIN_ELU_INTERVAL_MS) return previous.value;
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

  addPeer(address: string): void {
    this.peers ??= new Map();
    this.peers.set(address, (this.peers.get(address) ?? 0) + 1);
  }

  removePeers(addresses: readonly string[]): void {
    if (!this.peers) return;
    for (const address of addresses) {
      const remaining = (this.peers.get(address) ?? 1) - 1;
      if (remaining > 0) this.peers.set(address, remaining);
      else this.peers.delete(address);
    }
  }

  /** The addresses of connections still counted open, one entry per connection. */
  openPeers(): string[] {
    return [...(this.peers ?? [])].flatMap(([address, count]) => Array<string>(count).fill(address));
  }

  onConnectionsClosed(count: number): void {
    this.connections -= count;
    if (this.connections <= 0) {
      this.connections = 0;
      this.idleSince = performance.now();
    }
  }

  retire(): void {
    if (this.state === 'exited') return;
    this.state = 'retiring';
    this.port.postMessage({ type: 'retire' });
  }
}
