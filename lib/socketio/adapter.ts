// A Socket.IO adapter over the worker threads of one process: what one worker's server broadcasts, or
// asks of the others (fetchSockets, serverSideEmit, socketsJoin, ...), crosses a BroadcastChannel to
// every other worker serving the same namespace. socket.io-adapter's ClusterAdapterWithHeartbeat does
// the rest, and its heartbeat is how the adapters learn of each other.
import { BroadcastChannel } from 'node:worker_threads';
import {
  ClusterAdapterWithHeartbeat,
  MessageType,
  type ClusterAdapterOptions,
  type ClusterMessage,
  type ClusterResponse,
  type Offset,
  type ServerId,
} from 'socket.io-adapter';
import { getWorkerContext } from '../worker/context.ts';
import { restoreBuffers, toCloneable, type Found } from './clone.ts';
import { closeOnExit, forgetOnExit } from './thread-exit.ts';

export interface WorkerThreadsAdapterOptions extends ClusterAdapterOptions {
  /**
   * Names the group of servers that share broadcasts; 'socket.io' by default. Only two Socket.IO servers
   * in one worker that must not reach each other's clients need different keys.
   */
  key?: string;
}

// A message costs next to nothing between threads, so the adapters can afford to tell often that they
// are there: a worker stopped without a word (worker.terminate()) is given up within about 4 s, sooner
// than a fetchSockets() waits for it (5 s). A new worker announces itself at once.
export const HEARTBEAT_INTERVAL_MS = 1_000;
export const HEARTBEAT_TIMEOUT_MS = 3_000;

/** Socket.IO's Namespace, as socket.io-adapter types it. */
export type Namespace = ClusterAdapterWithHeartbeat['nsp'];

/** What crosses the channel: a message for every adapter, or a response for the one named by `to`. */
type Envelope = (ClusterMessage | ClusterResponse) & { to?: ServerId; binary?: true };

/**
 * One channel per ServiceProxy (its token), key and namespace: the workers of two proxies in one process
 * never mix. Outside a ServiceProxy's worker, the threads of the process share it.
 */
function channelName(key: string, namespace: string): string {
  const proxy = getWorkerContext()?.token ?? 'process';
  return `socketnaut:socket.io:${proxy}:${key}:${namespace}`;
}

/** The base class keeps its timers to itself; none of them may keep a worker alive. */
function unrefTimers(adapter: object): void {
  const timers = adapter as { cleanupTimer?: NodeJS.Timeout; heartbeatTimer?: NodeJS.Timeout };
  timers.cleanupTimer?.unref?.();
  timers.heartbeatTimer?.unref?.();
}

export class WorkerThreadsAdapter extends ClusterAdapterWithHeartbeat {
  readonly #channel: BroadcastChannel;
  #initialized = false;
  #closed = false;

  constructor(nsp: Namespace, options: WorkerThreadsAdapterOptions = {}) {
    super(nsp, { heartbeatInterval: HEARTBEAT_INTERVAL_MS, heartbeatTimeout: HEARTBEAT_TIMEOUT_MS, ...options });
    unrefTimers(this);
    this.#channel = new BroadcastChannel(channelName(options.key ?? 'socket.io', nsp.name));
    this.#channel.onmessage = (event) => this.#receive(event.data as Envelope);
    (this.#channel as unknown as { unref(): void }).unref();
    closeOnExit(this);
    // Socket.IO calls init() itself only from 4.8.2.
    this.init();
  }

  override init(): void {
    if (this.#initialized) return;
    this.#initialized = true;
    super.init();
  }

  override close(): void {
    if (this.#closed) return;
    super.close();
    this.#closed = true;
    this.#channel.close();
    forgetOnExit(this);
  }

  protected override async doPublish(message: ClusterMessage): Promise<Offset> {
    // An adapter that the app replaced (io.adapter(...)) stops at its next heartbeat, if no message stopped it before.
    if (message.type === MessageType.HEARTBEAT && this.#replaced()) {
      this.close();
      return '';
    }
    this.#post(message);
    unrefTimers(this);
    // No connection state recovery: there is no log of messages to give an offset in.
    return '';
  }

  protected override async doPublishResponse(requesterUid: ServerId, response: ClusterResponse): Promise<void> {
    this.#post({ ...response, to: requesterUid });
  }

  #replaced(): boolean {
    return this.nsp.adapter !== this;
  }

  #post(message: Envelope): void {
    if (this.#closed) return;
    const found: Found = { binary: false };
    const envelope = toCloneable(message, found) as Envelope;
    if (found.binary) envelope.binary = true;
    this.#channel.postMessage(envelope);
  }

  #receive(envelope: Envelope): void {
    if (this.#closed) return;
    if (this.#replaced()) {
      this.close();
      return;
    }
    if (envelope.to !== undefined && envelope.to !== this.uid) return;
    if (envelope.binary) restoreBuffers(envelope);
    // Responses go through onMessage too, which hands them to onResponse. The empty offset is the one
    // doPublish gives the sender's own clients, when connection state recovery appends it.
    this.onMessage(envelope as ClusterMessage, '');
  }
}

/**
 * An adapter for Socket.IO's `adapter` option or `io.adapter()`: broadcasts, rooms, `fetchSockets()`,
 * `serverSideEmit()` and the other utility methods reach the Socket.IO servers of every worker thread
 * of the process (of the one ServiceProxy, in its workers).
 */
export function createAdapter(options: WorkerThreadsAdapterOptions = {}): typeof WorkerThreadsAdapter {
  const WorkerThreadsAdapterWithOptions = class extends WorkerThreadsAdapter {
    constructor(nsp: Namespace) {
      super(nsp, options);
    }
  };
  return WorkerThreadsAdapterWithOptions;
}
