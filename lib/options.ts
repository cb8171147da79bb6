import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { WorkerOptions } from 'node:worker_threads';
import type { BalancerName } from './balancers/balancer.ts';
import { loadTls } from './builtins.ts';
import { ERR_INVALID_OPTION, ERR_OPTION_OUT_OF_RANGE, describeValue } from './errors.ts';
import type { ServerDefaults } from './protocol/messages.ts';
import type { ProxyProtocolSettings } from './proxy-protocol/gate.ts';
import { resolveSetting, type SettingName } from './settings.ts';
import { parseSubnet } from './settings/checks.ts';
import type { TransportName } from './transports/delivery.ts';

export { MAX_TIMER_MS } from './settings/checks.ts';

export interface ServiceProxyOptions {
  /** A `net.Server` or `tls.Server`, configured and listened on by the caller. */
  server: net.Server;
  /** Path (relative to the working directory) or URL of the module each worker runs. */
  workerURL: string | URL;
  /** Sets both `minWorkers` and `maxWorkers`. */
  workerCount?: number;
  minWorkers?: number;
  maxWorkers?: number;
  /** How often idle workers above `minWorkers` are retired, in milliseconds. */
  workersCheckingInterval?: number;
  workerOptions?: WorkerOptions;
  transport?: TransportName;
  balance?: BalancerName;
  /** Connections that may wait for a worker while none can take them. */
  queueLimit?: number;
  /** How long a queued connection may wait for a worker, in milliseconds. */
  queueTimeout?: number;
  /** How long a new worker may take to start serving, in milliseconds. */
  workerStartTimeout?: number;
  /** Open connections allowed at once; 0 for no limit. */
  maxConnections?: number;
  /** Open connections allowed at once from one client address; 0 for no limit. */
  maxConnectionsPerIp?: number;
  /** IPv6 clients are counted and hashed by their network of this many bits (64); 128 for each address. */
  perIpPrefix?: number;
  /** How long a TLS handshake may take when the server is a tls.Server, in milliseconds. */
  handshakeTimeout?: number;
  /** Written to a connection closed because no worker could take it (queue full or timed out). */
  overloadResponse?: string | Buffer;
  /** Deadlines given to HTTP servers in the workers that still have Node's defaults, in milliseconds. */
  serverDefaults?: ServerDefaults;
  /** Measure each hand-off, from accept to the worker's server, and emit 'handoff-latency' (seconds). */
  measureHandoffLatency?: boolean;
  /** Every connection must open with a PROXY protocol (v1 or v2) header naming the real client. */
  proxyProtocol?: boolean;
  /** Accept PROXY headers only from these peers: addresses or CIDR subnets. */
  proxyProtocolFrom?: string[];
  /** How long a peer may take to send its whole PROXY header, in milliseconds. */
  proxyProtocolTimeout?: number;
  /**
   * How long open connections may take to finish, in milliseconds: the default `timeout` of reload()
   * and shutdown(), and the grace of a worker recycled for its memory.
   */
  shutdownTimeout?: number;
  /**
   * How long a worker's event loop may stay stuck before the worker is replaced, in milliseconds:
   * 0, or 1000 and more. Stuck for 1 s, a worker already gets no new connection until it turns again.
   */
  stallTimeout?: number;
  /** MB of V8 heap in use above which a worker is recycled, its successor serving first. */
  maxMemoryRestart?: number;
}

export interface ResolvedOptions {
  server: net.Server;
  /** The server's address, read once: with the reuseport transport its listener moves into a worker. */
  publicAddress: net.AddressInfo | string | null;
  workerURL: URL;
  minWorkers: number;
  maxWorkers: number;
  workersCheckingInterval: number;
  workerOptions: WorkerOptions;
  transport: TransportName;
  balance: BalancerName;
  queueLimit: number;
  queueTimeout: number;
  workerStartTimeout: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  perIpPrefix: number;
  handshakeTimeout: number;
  overloadResponse: string | Buffer | undefined;
  serverDefaults: ServerDefaults | undefined;
  measureHandoffLatency: boolean;
  proxyProtocol: ProxyProtocolSettings | undefined;
  shutdownTimeout: number;
  stallTimeout: number;
  maxMemoryRestart: number | undefined;
}

/** The `timeout` of shutdown() and reload(): how long open connections may take to finish, in ms. */
export function drainTimeout(value: unknown, name = 'timeout'): number {
  return resolveSetting('shutdownTimeout', value, name);
}

export function toWorkerURL(value: unknown): URL {
  const url = resolveSetting('workerURL', value);
  if (url instanceof URL) return url;
  if (/^(file|data):/.test(url)) return new URL(url);
  return pathToFileURL(path.resolve(url));
}

function blockList(entries: string[]): net.BlockList {
  const list = new net.BlockList();
  for (const entry of entries) {
    const { address, family, prefix } = parseSubnet(entry)!;
    if (prefix === undefined) list.addAddress(address, family);
    else list.addSubnet(address, prefix, family);
  }
  return list;
}

/** The pool's bounds: `workerCount` sets both; otherwise `maxWorkers` defaults to the available parallelism. */
export function workerBounds(options: Pick<ServiceProxyOptions, 'workerCount' | 'minWorkers' | 'maxWorkers'>): {
  minWorkers: number;
  maxWorkers: number;
} {
  const workerCount = resolveSetting('workerCount', options.workerCount);
  if (workerCount !== undefined) {
    if (options.minWorkers !== undefined || options.maxWorkers !== undefined) {
      throw new ERR_INVALID_OPTION('workerCount', 'used without minWorkers and maxWorkers', 'both');
    }
    return { minWorkers: workerCount, maxWorkers: workerCount };
  }
  const minWorkers = resolveSetting('minWorkers', options.minWorkers);
  const maxWorkers =
    resolveSetting('maxWorkers', options.maxWorkers) ?? Math.max(minWorkers, 1, os.availableParallelism());
  if (maxWorkers < minWorkers) {
    throw new ERR_OPTION_OUT_OF_RANGE('maxWorkers', `>= minWorkers (${minWorkers})`, String(maxWorkers));
  }
  return { minWorkers, maxWorkers };
}

export function resolveOptions(options: ServiceProxyOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw new ERR_INVALID_OPTION('options', 'an object', describeValue(options));
  }
  const value = <K extends SettingName & keyof ServiceProxyOptions>(name: K) => resolveSetting(name, options[name]);
  const server = value('server');
  const workerURL = toWorkerURL(options.workerURL);

  const { minWorkers, maxWorkers } = workerBounds(options);
  const transport = value('transport');
  const proxyProtocol = value('proxyProtocol');
  if (transport === 'reuseport' && minWorkers !== maxWorkers) {
    throw new ERR_INVALID_OPTION(
      'transport',
      "'reuseport' only with a fixed pool (workerCount, or minWorkers equal to maxWorkers)",
      "'reuseport'",
    );
  }
  if (server instanceof loadTls().Server) {
    if (transport === 'handoff' || transport === 'reuseport') {
      throw new ERR_INVALID_OPTION('transport', "'pipe' or 'auto' when the server is a tls.Server", `'${transport}'`);
    }
    if (proxyProtocol) {
      throw new ERR_INVALID_OPTION(
        'proxyProtocol',
        'false when the server is a tls.Server, whose TLS handshake would meet the header first',
        'true',
      );
    }
  }

  // Checked whether or not the PROXY protocol is on, so that a mistake shows before it is switched on.
  const proxyProtocolFrom = value('proxyProtocolFrom');
  const proxyProtocolTimeout = value('proxyProtocolTimeout');
  return {
    server,
    publicAddress: server.address(),
    workerURL,
    minWorkers,
    maxWorkers,
    workersCheckingInterval: value('workersCheckingInterval'),
    workerOptions: value('workerOptions') ?? {},
    transport,
    balance: value('balance'),
    queueLimit: value('queueLimit'),
    queueTimeout: value('queueTimeout'),
    workerStartTimeout: value('workerStartTimeout'),
    maxConnections: value('maxConnections'),
    maxConnectionsPerIp: value('maxConnectionsPerIp'),
    perIpPrefix: value('perIpPrefix'),
    handshakeTimeout: value('handshakeTimeout'),
    overloadResponse: value('overloadResponse'),
    measureHandoffLatency: value('measureHandoffLatency'),
    proxyProtocol: proxyProtocol
      ? { timeout: proxyProtocolTimeout, trusted: proxyProtocolFrom && blockList(proxyProtocolFrom) }
      : undefined,
    serverDefaults: value('serverDefaults'),
    shutdownTimeout: value('shutdownTimeout'),
    stallTimeout: value('stallTimeout'),
    maxMemoryRestart: value('maxMemoryRestart'),
  };
}
