import { MessageChannel, Worker, type MessagePort, type WorkerOptions } from 'node:worker_threads';
import type { SerializedError, WorkerBootData } from './messages.ts';

export type WorkerState = 'starting' | 'ready' | 'retiring' | 'exited';

const bootstrapURL = new URL('./worker/bootstrap.js', import.meta.url);

/** The main thread's record of one worker thread: its channel, its state and its open connections. */
export class WorkerHandle {
  readonly id: number;
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
  /** When `connections` last dropped to zero, for idle reaping. */
  idleSince = performance.now();
  bootstrapError: SerializedError | undefined;
  uncaughtError: Error | undefined;

  constructor(id: number, boot: Omit<WorkerBootData, 'port'>, workerOptions: WorkerOptions) {
    this.id = id;
    this.pipePath = boot.pipePath;
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const data: WorkerBootData = { ...boot, port: port2, userWorkerData: workerOptions.workerData };
    this.worker = new Worker(bootstrapURL, {
      ...workerOptions,
      workerData: data,
      transferList: [...(workerOptions.transferList ?? []), port2],
    });
    this.threadId = this.worker.threadId;
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
