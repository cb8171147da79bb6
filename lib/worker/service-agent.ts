import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import net from 'node:net';
import type { Logger } from 'streams-logger';
import {
  ERR_ADDRESS_UNKNOWN,
  ERR_AGENT_EXISTS,
  ERR_INVALID_OPTION,
  ERR_NOT_IN_WORKER,
  describeValue,
} from '../errors.ts';
import {
  addressInfoOf,
  kAddressInfo,
  storedAddressInfo,
  type AddressInfoCarrier,
  type ProxySocketAddressInfo,
} from '../protocol/address-info.ts';
import { sharedClock, type FromWorker, type WorkerBootData } from '../protocol/messages.ts';
import { BETWEEN_WORKERS } from '../transports/pipe/preamble.ts';
import type { ConnectionSink } from '../transports/worker-transport.ts';
import { getWorkerContext, isModuleLoaded } from './context.ts';
import { sharedServers } from './shared-servers.ts';
import { shareTicketKeys, takeOverServer } from './server-takeover.ts';
import { closeHttp2Sessions, followHttp2Sessions } from './http2-sessions.ts';
import { cameFromWorker, routeSessionsOf } from './sessions.ts';

export interface ServiceAgentOptions {
  server: net.Server;
}

// streams-logger costs ~1.8 MB in every worker that loads it, and an agent logs only when asked to.
// The path is the compiled module's, in dist/; require() of an ES module is why engines says Node 22.12.
const loadLogging = (): typeof import('../logging.ts') => createRequire(import.meta.url)('../logging.js');
/** SyslogLevel.DEBUG, without loading the logger to read it. */
const DEBUG = 7;

const IDLE_SWEEP_MS = 500;
/** Closed connections are reported together, at most this often: one message instead of one each. */
const REPORT_INTERVAL_MS = 5;

function endAfterResponse(_req: unknown, res: { shouldKeepAlive: boolean }): void {
  res.shouldKeepAlive = false;
}

/** Settings net.Server keeps from its constructor options and applies to sockets it accepts itself. */
interface ServerSettings {
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  allowHalfOpen?: boolean;
}

/**
 * The worker's side of a ServiceProxy: feeds the connections the proxy moves here to one server,
 * and tells the proxy when that server is serving and when its connections end.
 */
export class ServiceAgent extends EventEmitter implements ConnectionSink {
  readonly server: net.Server;
  readonly #context: WorkerBootData;
  #log: Logger | undefined;
  // A count, not a Set: churn in a Set keeps closed sockets alive through young-generation GCs (measured).
  #openCount = 0;
  /** Closed connections not yet reported: a count of those handed over, the ids of those piped. */
  #closedSinceReport = 0;
  #reportTimer: NodeJS.Timeout | undefined;
  /** Peers of the handed-over connections among them; filled only when the proxy asks for them. */
  #closedPeers: string[] = [];
  /** Pipe transport ids of closed connections not yet reported. */
  #closedPipeIds: number[] = [];
  #latencies: number[] = [];
  #serving = false;
  #stopping = false;
  #idleSweep: NodeJS.Timeout | undefined;

  constructor(server: net.Server, context: WorkerBootData) {
    super();
    this.server = server;
    this.#context = context;
    takeOverServer(server, this, context.serverDefaults);
    followHttp2Sessions(server);
    shareTicketKeys(server, context.ticketKeys);
    routeSessionsOf(server);
  }

  /** The worker's logger; its records reach the main thread's logging graph. */
  get log(): Logger {
    this.#log ??= loadLogging().createLogger('ServiceAgent', this.#context.logLevel);
    return this.#log;
  }

  get connections(): number {
    return this.#openCount;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  takes(sharedPort?: number): boolean {
    return sharedPort ? (sharedServers()?.takes(sharedPort) ?? false) : !this.#stopping;
  }

  /** Called with a hand-off's start time when the proxy measures hand-offs; reported in batches. */
  recordHandoff(acceptedAt: number): void {
    if (this.#latencies.push((sharedClock() - acceptedAt) / 1000) === 1) setImmediate(this.#reportLatencies);
  }

  readonly #reportLatencies = (): void => this.#post({ type: 'handoff-latencies', seconds: this.#latencies.splice(0) });

  /**
   * Called by a transport with a connection the proxy moved to this worker. `peer` is the address
   * the proxy accepted it from, when that is not the socket's own remote address.
   */
  accept(socket: net.Socket, info?: ProxySocketAddressInfo, peer?: string, pipeId?: number, sharedPort?: number): void {
    const piped = pipeId !== undefined;
    this.#serve(socket, info, sharedPort, piped, pipeId === BETWEEN_WORKERS, () => this.#track(socket, peer, pipeId));
  }

  /** A connection this worker accepted itself (reuseport), counted in shared memory, not by the proxy. */
  acceptOwn(socket: net.Socket, info: ProxySocketAddressInfo | undefined): void {
    this.#serve(socket, info, undefined, false, false, () => this.#trackOwn(socket));
  }

  rejectOwn(socket: net.Socket, reason: string): void {
    this.#trackOwn(socket);
    this.#rejected(socket, socket.remoteAddress ?? '', reason);
  }

  #serve(
    socket: net.Socket,
    info: ProxySocketAddressInfo | undefined,
    sharedPort: number | undefined,
    piped: boolean,
    betweenWorkers: boolean,
    track: () => void,
  ): void {
    const server = this.#serverFor(socket, sharedPort, betweenWorkers);
    if (!server) {
      // The app closed that server while the connection was on its way, and it could not be given
      // back (it was read already, for its PROXY header).
      track();
      socket.destroy();
      return;
    }
    if (info) (socket as AddressInfoCarrier)[kAddressInfo] = info;
    if (betweenWorkers) cameFromWorker(socket);
    if (server.noDelay) socket.setNoDelay(true);
    if (server.keepAlive) socket.setKeepAlive(true, server.keepAliveInitialDelay);
    socket.allowHalfOpen = server.allowHalfOpen ?? false;
    (socket as { server?: net.Server }).server = server;
    if (piped) {
      // A Unix socket cannot be reset; an app that resets its client gets the nearest thing.
      socket.resetAndDestroy = () => socket.destroy();
    } else {
      // A socket net.Server accepts starts reading at once, so that the peer's FIN is seen even by a
      // server that never reads; a moved socket arrives stopped and must be started the same way.
      socket.read(0);
    }
    track();
    server.emit('connection', socket);
  }

  // A request of one of this worker's sessions, from another worker, is served while the server
  // drains: the session lives here until the worker ends.
  #serverFor(
    socket: net.Socket,
    sharedPort: number | undefined,
    betweenWorkers: boolean,
  ): (net.Server & ServerSettings) | undefined {
    if (sharedPort) return sharedServers()?.take(sharedPort, socket);
    return this.#stopping && !betweenWorkers ? undefined : this.server;
  }

  /** Closes a connection whose PROXY header was missing or malformed, without the server seeing it. */
  reject(socket: net.Socket, peer: string, reason: string): void {
    this.#track(socket, peer);
    this.#rejected(socket, peer, reason);
  }

  #rejected(socket: net.Socket, peer: string, reason: string): void {
    if ((this.#log?.level ?? this.#context.logLevel) >= DEBUG)
      this.log.debug(`Rejected a connection from ${peer}: ${reason}`);
    this.#post({ type: 'proxy-header-rejected' });
    socket.destroy();
  }

  // The peer is recorded for per-address limits, which the proxy counted by the address it accepted from:
  // it sends that address with every connection it hands off while it tracks peers. The piped ones it
  // counts itself.
  #track(socket: net.Socket, peer: string | undefined, pipeId?: number): void {
    this.#openCount++;
    const trackedPeer = this.#context.trackPeers && pipeId === undefined ? peer : undefined;
    socket.once('close', () => this.#onSocketClose(trackedPeer, pipeId));
  }

  #trackOwn(socket: net.Socket): void {
    this.#openCount++;
    socket.once('close', () => {
      this.#openCount--;
      this.#checkDrained();
    });
  }

  /**
   * The client's and the proxy's ends of a connection the proxy brought: known in the worker, from the
   * socket, its PROXY header or its preamble. Undefined for any other socket.
   */
  getProxySocketAddressInfo(socket: net.Socket): ProxySocketAddressInfo | undefined {
    const stored = storedAddressInfo(socket);
    if (stored) return stored;
    if (this.#context.transport === 'pipe') return undefined;
    const info = addressInfoOf(socket);
    if (info) (socket as AddressInfoCarrier)[kAddressInfo] = info;
    return info;
  }

  /** As getProxySocketAddressInfo(), but throws SOCKETNAUT_ERR_ADDRESS_UNKNOWN where that gives undefined. */
  requestProxySocketAddressInfo(socket: net.Socket): ProxySocketAddressInfo {
    const info = this.getProxySocketAddressInfo(socket);
    if (!info) throw new ERR_ADDRESS_UNKNOWN();
    return info;
  }

  /**
   * The server is ready for connections. The proxy hears of it once the worker module has also
   * finished loading, so that a module that throws after listen() counts as failing to start.
   */
  markServing(): void {
    if (this.#serving || this.#stopping || !isModuleLoaded()) return;
    this.#serving = true;
    this.#post({ type: 'ready' });
  }

  /** Stops taking connections; calls back once every connection has ended. */
  stop(callback?: () => void): void {
    if (!this.#stopping) {
      this.#stopping = true;
      this.#post({ type: 'stopped' });
      this.#closeKeepAliveConnections();
      closeHttp2Sessions(this.server);
    }
    if (callback) {
      if (this.#openCount === 0) process.nextTick(callback);
      else this.once('drained', callback);
    }
    this.#checkDrained();
  }

  // A busy keep-alive connection is told to close with its next response, so its client never
  // reuses it. One still idle at a sweep has sent nothing for a while and is closed then.
  #closeKeepAliveConnections(): void {
    const servers = [this.server, ...(sharedServers()?.servers() ?? [])] as (net.Server & {
      closeIdleConnections?: () => void;
    })[];
    const http = servers.filter((server) => typeof server.closeIdleConnections === 'function');
    if (http.length === 0) return;
    for (const server of http) server.prependListener('request', endAfterResponse);
    this.#idleSweep = setInterval(() => {
      for (const server of http) server.closeIdleConnections!();
    }, IDLE_SWEEP_MS).unref();
  }

  #onSocketClose(peer: string | undefined, pipeId: number | undefined): void {
    this.#openCount--;
    // The proxy does not count connections from other workers.
    if (pipeId === undefined) this.#closedSinceReport++;
    else if (pipeId !== BETWEEN_WORKERS) this.#closedPipeIds.push(pipeId);
    if (peer !== undefined) this.#closedPeers.push(peer);
    this.#reportTimer ??= setTimeout(this.#reportClosedIfPending, REPORT_INTERVAL_MS);
    this.#checkDrained();
  }

  get #unreported(): boolean {
    return this.#closedSinceReport > 0 || this.#closedPipeIds.length > 0;
  }

  readonly #reportClosedIfPending = (): void => {
    this.#reportTimer = undefined;
    if (this.#unreported) this.#reportClosed();
  };

  #reportClosed(): void {
    const count = this.#closedSinceReport;
    this.#closedSinceReport = 0;
    const peers = this.#context.trackPeers ? this.#closedPeers : undefined;
    this.#closedPeers = [];
    const pipeIds = this.#closedPipeIds.length > 0 ? this.#closedPipeIds : undefined;
    this.#closedPipeIds = [];
    this.#post({ type: 'closed', count, peers, pipeIds });
  }

  #checkDrained(): void {
    if (!this.#stopping || this.#openCount > 0) return;
    clearInterval(this.#idleSweep);
    // The proxy must count the last connections closed before it hears that this worker is drained.
    if (this.#unreported) this.#reportClosed();
    this.emit('drained');
    this.#post({ type: 'drained' });
  }

  #post(message: FromWorker): void {
    this.#context.port.postMessage(message);
  }
}

const kAgent = Symbol.for('socketnaut.agent');
type AgentGlobal = { [kAgent]?: { agent: ServiceAgent; explicit: boolean } };

export function currentAgent(): ServiceAgent | undefined {
  return (globalThis as AgentGlobal)[kAgent]?.agent;
}

/**
 * The agent for `server`, made on first use. `explicit` marks a call of createServiceAgent(),
 * which may happen once per worker; the launcher's implicit agent for a listening server does not count.
 */
export function agentFor(server: net.Server, explicit: boolean): ServiceAgent {
  const context = getWorkerContext();
  if (!context) throw new ERR_NOT_IN_WORKER();
  const global = globalThis as AgentGlobal;
  const existing = global[kAgent];
  if (existing) {
    if (existing.agent.server !== server) {
      throw new ERR_AGENT_EXISTS(
        existing.explicit ? 'for another server' : 'for another server, which called listen() first',
      );
    }
    if (explicit && existing.explicit) throw new ERR_AGENT_EXISTS('from an earlier createServiceAgent() call');
    existing.explicit ||= explicit;
    return existing.agent;
  }
  const agent = new ServiceAgent(server, context);
  global[kAgent] = { agent, explicit };
  return agent;
}

export function createServiceAgent(options: ServiceAgentOptions): ServiceAgent {
  if (options === null || typeof options !== 'object') {
    throw new ERR_INVALID_OPTION('options', 'an object', describeValue(options));
  }
  if (!(options.server instanceof net.Server)) {
    throw new ERR_INVALID_OPTION(
      'server',
      'a net.Server, http.Server, https.Server or tls.Server',
      describeValue(options.server),
    );
  }
  return agentFor(options.server, true);
}
