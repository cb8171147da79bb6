// The contract between the main thread and its workers: what a worker is told when it starts, and
// the messages that pass between them. A leaf: it imports nothing from either side.
import type net from 'node:net';
import type { MessagePort } from 'node:worker_threads';
import type { LogContext, SyslogLevelT } from 'streams-logger';

export type ConcreteTransportName = 'handoff' | 'pipe' | 'reuseport';

export type LogRecord = LogContext<string, SyslogLevelT>;

/** Deadlines given to a worker's HTTP server that still has Node's defaults, in milliseconds. */
export interface ServerDefaults {
  headersTimeout?: number;
  requestTimeout?: number;
}

/** What a worker needs to accept connections itself, with the reuseport transport. */
export interface ReuseportBoot {
  /** The shared connection counts, and their layout (see transports/reuseport/shared-counts.ts). */
  counts: SharedArrayBuffer;
  layout: { workers: number; peers: number };
  /** This worker's place in them, and its pool slot (for ip-hash). */
  index: number;
  slot: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  ipv6PrefixBits: number;
  balance: string;
  /** With the PROXY protocol, who may send the header; undefined for anyone. */
  trusted: net.BlockList | undefined;
}

/** What the proxy gives each worker it starts, through `workerData`, before the user's module runs. */
export interface WorkerBootData {
  socketnautWorker: 1;
  port: MessagePort;
  /** The worker's id in the pool: unique within the proxy, never reused. */
  id: number;
  moduleURL: string;
  transport: ConcreteTransportName;
  /** The worker's private Unix socket, with the pipe transport. */
  pipePath: string | undefined;
  /** Where every worker may take connections piped to it (see protocol/sessions.ts pipePathIn). */
  pipeDir: string;
  token: string;
  /** The public port's address; null while it is not bound (the launcher binds it where the app first asks). */
  publicAddress: net.AddressInfo | string | null;
  logLevel: number;
  /** Report the peer address of each closed connection, for per-address limits. */
  trackPeers: boolean;
  serverDefaults: ServerDefaults | undefined;
  /** TLS session ticket keys shared by the workers' TLS servers, so that a session resumes on any of them. */
  ticketKeys: Uint8Array;
  /** Set when each connection opens with a PROXY header that this worker must read (hand-off). */
  proxyHeaderTimeout: number | undefined;
  /** Where the worker writes its heartbeat (see HEARTBEAT_INTERVAL_MS); undefined when stalls are not watched. */
  heartbeat: SharedArrayBuffer | undefined;
  reuseport: ReuseportBoot | undefined;
  /** A Socket.IO server left with the in-memory adapter gets socketnaut's. */
  socketioAdapter: boolean;
  /** The reverse proxies whose `Forwarded` / `X-Forwarded-For` name the client; undefined for none. */
  trustProxy: net.BlockList | undefined;
  /**
   * Set under ip-hash with trustProxy: a request from a trusted proxy goes to the worker its client
   * hashes to (an IPv6 client keyed by its network of this many bits), among the members the main
   * thread tells of.
   */
  routeByClient: { ipv6PrefixBits: number } | undefined;
  /** The main thread sends a client's next connections to the worker that issued it a session: tell it of each. */
  reportSessions: boolean;
  userWorkerData: unknown;
}

/** A listen() of a worker's other server, opened once on the main thread for every worker that asks. */
export interface ListenRequest {
  /** Names the same listen in every worker: its address, and for port 0 which such call of the worker it is. */
  key: string;
  port?: number;
  host?: string;
  path?: string;
  backlog?: number;
  ipv6Only?: boolean;
}

/**
 * A listen() on the public port: where the app's server asks for it (the port is the public one,
 * whatever it names), and whether it serves HTTP, for the start-up line.
 */
export interface PublicListen {
  host?: string;
  ipv6Only?: boolean;
  backlog?: number;
  /** 'http' or 'https' for an HTTP server (an HTTP/2 one with a 'request' listener); undefined otherwise. */
  scheme: 'http' | 'https' | undefined;
}

/** What a failed listen on the main thread raised, to be raised again by the worker's server. */
export interface ListenFailure {
  message: string;
  code: string | undefined;
  errno: number | undefined;
  syscall: string | undefined;
  address: string | undefined;
  port: number | undefined;
}

export type ToWorker =
  /** `sharedPort` names the app's other server the connection is for; absent for the public port. */
  | { type: 'connection'; socket: net.Socket; acceptedAt?: number; peer?: string; sharedPort?: number }
  | {
      type: 'listen-result';
      request: number;
      sharedPort: number;
      address: net.AddressInfo | string | null;
      /** Where this worker must take piped connections for the port, when it does not already. */
      pipePath: string | undefined;
      failure: ListenFailure | undefined;
    }
  /** Where the public port is bound for the worker's listen() `request`, or why it could not be. */
  | {
      type: 'public-address';
      request: number;
      address: net.AddressInfo | string | null;
      failure: ListenFailure | undefined;
    }
  /** Stop taking connections and finish the open ones; `signal` is emitted first to the app's listeners. */
  | { type: 'retire'; signal: NodeJS.Signals | undefined }
  /**
   * The worker has finished every connection, those on their way to it included: it ends once its
   * app's own work is done, its event loop empty, as a process does; at once if its app asked to exit.
   */
  | { type: 'may-end' }
  /** Its time to stop has passed: it reports what is still pending, then ends now. */
  | { type: 'end' }
  /** Reuseport: accept on this listener of the public port; give them back, or close them. */
  | { type: 'lend-listener'; server: net.Server }
  /** `count` of them, or all. */
  | { type: 'return-listeners'; count?: number }
  | { type: 'close-listeners' }
  /** Reuseport: another worker, and the channel to move connections to it. */
  | { type: 'peer'; index: number; slot: number; port: MessagePort }
  | { type: 'peer-gone'; index: number }
  /** The workers that take requests now (ready, not stalled), each with its pool slot; sent only with routeByClient. */
  | { type: 'members'; members: Member[] };

/** A worker as per-request ip-hash ranks it. */
export interface Member {
  id: number;
  slot: number;
}

export interface SerializedError {
  name: string;
  message: string;
  stack: string | undefined;
  code: string | undefined;
}

/** A change of what all threads of the process share, which Node lets only the main thread make. */
export type ProcessCall = { api: 'chdir'; directory: string } | { api: 'umask'; mask: number | string };

/** What the main thread answers a ProcessCall: the call's value, another worker's value that it conflicts with, or the call's error. */
export type ProcessCallAnswer =
  | { value: number | undefined }
  | { conflict: string | number }
  | { failure: SystemFailure };

/** An error of a call on the main thread (a missing directory, a bad argument), to be raised again in the worker. */
export interface SystemFailure {
  name: string;
  message: string;
  code: string | undefined;
  errno: number | undefined;
  syscall: string | undefined;
  path: string | undefined;
  dest: string | undefined;
}

/** A process warning a worker's code emitted, as Node prints it. */
export interface WorkerWarning {
  name: string;
  message: string;
  code?: string;
  detail?: string;
}

export type FromWorker =
  | { type: 'ready' }
  /**
   * Connections that closed since the last report: `count` of those the worker was handed, with their
   * peers when asked for; `pipeIds` of those that came over the pipe transport, which the main thread counts.
   */
  | { type: 'closed'; count: number; peers: string[] | undefined; pipeIds: number[] | undefined }
  | { type: 'handoff-latencies'; seconds: number[] }
  /** The worker issued an Engine.IO session to the client at `address` (as the handshake's socket reports it). */
  | { type: 'session-issued'; address: string }
  | { type: 'listen'; request: number; listen: ListenRequest }
  | { type: 'public-listen'; request: number; listen: PublicListen }
  | { type: 'unlisten'; sharedPort: number }
  | { type: 'proxy-header-rejected' }
  | { type: 'stopped' }
  | { type: 'drained' }
  | { type: 'log'; record: LogRecord }
  /** A process warning, which the main thread prints once for all workers. */
  | { type: 'warning'; warning: WorkerWarning }
  | { type: 'bootstrap-error'; error: SerializedError }
  /** Told to end at its deadline: what still kept it alive, as process.getActiveResourcesInfo() names it. */
  | { type: 'pending'; resources: string[] }
  /**
   * A connection for a server its app had closed, given back intact for another worker: one the proxy
   * moved here for that server (`sharedPort` names it, absent for the public port's), or one this
   * worker accepted itself (`own`, reuseport), which stays admitted.
   */
  | { type: 'connection-refused'; socket: net.Socket; sharedPort?: number; own: boolean }
  /** Reuseport: a listener given back, still open, so that nothing in its queue is lost. */
  | { type: 'listener-returned'; server: net.Server }
  /**
   * The worker waits, blocked, for the answer: the main thread posts it on `reply`, then sets the
   * Int32 at 0 of `answered` to 1 and notifies it (see worker/process-apis.ts).
   */
  | { type: 'process-call'; call: ProcessCall; reply: MessagePort; answered: SharedArrayBuffer };

export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return {
      name: err.name,
      message: err.message,
      stack: err.stack,
      code: typeof code === 'string' ? code : undefined,
    };
  }
  return { name: 'Error', message: String(err), stack: undefined, code: undefined };
}

/** Milliseconds on a clock that all threads of the process share. */
export function sharedClock(): number {
  return performance.timeOrigin + performance.now();
}

// The heartbeat: two Int32 cells the worker writes and the main thread reads, so that the main thread
// knows, without asking, when the worker last showed life. HEARTBEAT_TURN holds the shared clock when
// its event loop last ran its timers, in whole ms wrapped to 32 bits (differences hold for 24 days);
// HEARTBEAT_REQUESTS counts the HTTP requests it began, so that a loop busy with one request after
// another within a single turn still shows progress.
export const HEARTBEAT_TURN = 0;
export const HEARTBEAT_REQUESTS = 1;
export const HEARTBEAT_BYTES = 8;
/**
 * How often a worker's loop writes HEARTBEAT_TURN. An idle worker shows life otherwise (its loop's
 * idle time grows, which the main thread reads), so this only needs to be often enough for a busy one.
 */
export const HEARTBEAT_INTERVAL_MS = 250;

/** The shared clock as the heartbeat holds it. */
export function heartbeatClock(): number {
  return Math.trunc(sharedClock()) | 0;
}
