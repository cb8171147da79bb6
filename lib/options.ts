import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { WorkerOptions } from 'node:worker_threads';
import { ERR_INVALID_OPTION, ERR_OPTION_OUT_OF_RANGE, describeValue } from './errors.ts';
import { balancerNames, type BalancerName } from './balancers/balancer.ts';
import type { ServerDefaults } from './protocol/messages.ts';
import type { ProxyProtocolSettings } from './proxy-protocol/gate.ts';
import { transportNames, type TransportName } from './transports/transport.ts';

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
}

export interface ResolvedOptions {
  server: net.Server;
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
  overloadResponse: string | Buffer | undefined;
  serverDefaults: ServerDefaults | undefined;
  measureHandoffLatency: boolean;
  proxyProtocol: ProxyProtocolSettings | undefined;
}

const defaults = {
  minWorkers: 0,
  workersCheckingInterval: 60_000,
  transport: 'auto',
  balance: 'least-connections',
  queueLimit: 1024,
  queueTimeout: 10_000,
  workerStartTimeout: 30_000,
  maxConnections: 0,
  maxConnectionsPerIp: 0,
  proxyProtocolTimeout: 3_000,
} as const;

function integer(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw new ERR_INVALID_OPTION(name, 'of type number', describeValue(value));
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    throw new ERR_OPTION_OUT_OF_RANGE(name, range, String(value));
  }
  return value;
}

const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;
/** Node runs a longer timer after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The `timeout` of shutdown() and reload(): how long open connections may take to finish, in ms. */
export function drainTimeout(value: unknown, name = 'timeout'): number {
  return value === undefined ? DEFAULT_DRAIN_TIMEOUT_MS : integer(name, value, 0, MAX_TIMER_MS);
}

function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw new ERR_INVALID_OPTION(name, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, describeValue(value));
  }
  return value as T;
}

function optional<T, F extends T | undefined>(value: T | undefined, fallback: F, check: (value: T) => T): T | F {
  return value === undefined ? fallback : check(value);
}

export function toWorkerURL(value: unknown): URL {
  if (value instanceof URL) return value;
  if (typeof value !== 'string' || value === '') {
    throw new ERR_INVALID_OPTION('workerURL', 'a non-empty string or a URL', describeValue(value));
  }
  if (/^(file|data):/.test(value)) return new URL(value);
  return pathToFileURL(path.resolve(value));
}

function boolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new ERR_INVALID_OPTION(name, 'a boolean', describeValue(value));
  return value;
}

function trustedPeers(value: unknown): net.BlockList {
  if (!Array.isArray(value)) throw new ERR_INVALID_OPTION('proxyProtocolFrom', 'an array of addresses or CIDR subnets', describeValue(value));
  const list = new net.BlockList();
  value.forEach((entry: unknown, i) => {
    const name = `proxyProtocolFrom[${i}]`;
    if (typeof entry !== 'string') throw new ERR_INVALID_OPTION(name, 'an address or a CIDR subnet', describeValue(entry));
    const [address = '', prefix, extra] = entry.split('/');
    const family = net.isIPv4(address) ? 'ipv4' : net.isIPv6(address) ? 'ipv6' : undefined;
    const bits = prefix === undefined ? undefined : Number(prefix);
    const maxBits = family === 'ipv4' ? 32 : 128;
    if (!family || extra !== undefined || (bits !== undefined && (!/^\d+$/.test(prefix!) || bits > maxBits))) {
      throw new ERR_INVALID_OPTION(name, "an address or a CIDR subnet, like '10.0.0.0/8'", describeValue(entry));
    }
    if (bits === undefined) list.addAddress(address, family);
    else list.addSubnet(address, bits, family);
  });
  return list;
}

export function resolveOptions(options: ServiceProxyOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw new ERR_INVALID_OPTION('options', 'an object', describeValue(options));
  }
  const { server } = options;
  if (!(server instanceof net.Server)) {
    throw new ERR_INVALID_OPTION('server', 'a net.Server or tls.Server', describeValue(server));
  }
  const workerURL = toWorkerURL(options.workerURL);

  let { minWorkers, maxWorkers } = options;
  if (options.workerCount !== undefined) {
    const count = integer('workerCount', options.workerCount, 1);
    if (minWorkers !== undefined || maxWorkers !== undefined) {
      throw new ERR_INVALID_OPTION('workerCount', 'used without minWorkers and maxWorkers', 'both');
    }
    minWorkers = maxWorkers = count;
  }
  const min = optional(minWorkers, defaults.minWorkers, (v) => integer('minWorkers', v, 0));
  const max = optional(maxWorkers, Math.max(min, 1, os.availableParallelism()), (v) => integer('maxWorkers', v, 1));
  if (max < min) {
    throw new ERR_OPTION_OUT_OF_RANGE('maxWorkers', `>= minWorkers (${min})`, String(max));
  }

  const workerOptions = options.workerOptions ?? {};
  if (workerOptions === null || typeof workerOptions !== 'object') {
    throw new ERR_INVALID_OPTION('workerOptions', 'an object', describeValue(workerOptions));
  }
  if (workerOptions.eval) {
    throw new ERR_INVALID_OPTION('workerOptions.eval', 'unset; workerURL names a module', 'true');
  }

  return {
    server,
    workerURL,
    minWorkers: min,
    maxWorkers: max,
    workersCheckingInterval: optional(options.workersCheckingInterval, defaults.workersCheckingInterval, (v) =>
      integer('workersCheckingInterval', v, 1, MAX_TIMER_MS),
    ),
    workerOptions,
    transport: optional(options.transport, defaults.transport, (v) => oneOf('transport', v, transportNames)),
    balance: optional(options.balance, defaults.balance, (v) => oneOf('balance', v, balancerNames)),
    queueLimit: optional(options.queueLimit, defaults.queueLimit, (v) => integer('queueLimit', v, 0)),
    queueTimeout: optional(options.queueTimeout, defaults.queueTimeout, (v) => integer('queueTimeout', v, 1, MAX_TIMER_MS)),
    workerStartTimeout: optional(options.workerStartTimeout, defaults.workerStartTimeout, (v) =>
      integer('workerStartTimeout', v, 1, MAX_TIMER_MS),
    ),
    maxConnections: optional(options.maxConnections, defaults.maxConnections, (v) => integer('maxConnections', v, 0)),
    maxConnectionsPerIp: optional(options.maxConnectionsPerIp, defaults.maxConnectionsPerIp, (v) =>
      integer('maxConnectionsPerIp', v, 0),
    ),
    overloadResponse: optional(options.overloadResponse, undefined, (v) => {
      if (typeof v !== 'string' && !Buffer.isBuffer(v)) {
        throw new ERR_INVALID_OPTION('overloadResponse', 'a string or a Buffer', describeValue(v));
      }
      return v;
    }),
    measureHandoffLatency: optional(options.measureHandoffLatency, false, (v) => boolean('measureHandoffLatency', v)),
    proxyProtocol: optional(options.proxyProtocol, false, (v) => boolean('proxyProtocol', v))
      ? {
          timeout: optional(options.proxyProtocolTimeout, defaults.proxyProtocolTimeout, (v) => integer('proxyProtocolTimeout', v, 1, MAX_TIMER_MS)),
          trusted: options.proxyProtocolFrom === undefined ? undefined : trustedPeers(options.proxyProtocolFrom),
        }
      : undefined,
    serverDefaults: optional(options.serverDefaults, undefined, (v) => {
      if (v === null || typeof v !== 'object') throw new ERR_INVALID_OPTION('serverDefaults', 'an object', describeValue(v));
      return {
        headersTimeout: optional(v.headersTimeout, undefined, (n) => integer('serverDefaults.headersTimeout', n, 1, MAX_TIMER_MS)),
        requestTimeout: optional(v.requestTimeout, undefined, (n) => integer('serverDefaults.requestTimeout', n, 0, MAX_TIMER_MS)),
      };
    }),
  };
}
