import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { WorkerOptions } from 'node:worker_threads';
import { loadTls } from './builtins.ts';
import { ERR_INVALID_OPTION, ERR_OPTION_OUT_OF_RANGE } from './errors.ts';
import type { ProxyProtocolSettings } from './proxy-protocol/gate.ts';
import { parseSubnet } from './settings/checks.ts';
import { type OptionsOf, type ResolvedOf, resolveSetting, resolveSettings } from './settings/resolve.ts';

export { MAX_TIMER_MS } from './settings/checks.ts';

/**
 * The options of createServiceProxy(): one for each setting of the proxy in the table of settings
 * (lib/settings.ts), whose help README.md's table of options shows.
 */
export interface ServiceProxyOptions extends OptionsOf<'proxy'> {}

/** What the proxy computes from the checked settings, in place of or besides the settings themselves. */
interface Computed {
  workerURL: URL;
  maxWorkers: number;
  workerOptions: WorkerOptions;
  /** Set when connections open with a PROXY header, from proxyProtocol, proxyProtocolFrom and proxyProtocolTimeout. */
  proxyProtocol: ProxyProtocolSettings | undefined;
  /** The reverse proxies whose forwarding headers are believed, from trustProxy. */
  trustProxy: net.BlockList | undefined;
}

/** The options the proxy runs with: `workerCount` and the PROXY protocol's settings folded into the computed ones. */
export interface ResolvedOptions
  extends Omit<ResolvedOf<'proxy'>, keyof Computed | 'workerCount' | 'proxyProtocolFrom' | 'proxyProtocolTimeout'>,
    Computed {}

/** The `timeout` of shutdown() and reload(): how long open connections may take to finish, in ms. */
export function drainTimeout(value: unknown, name = 'timeout'): number {
  return resolveSetting('shutdownTimeout', value, name);
}

/** The module a worker runs: a file: or data: URL, or a path relative to the working directory. */
function moduleURL(location: string | URL): URL {
  if (location instanceof URL) return location;
  if (/^(file|data):/.test(location)) return new URL(location);
  return pathToFileURL(path.resolve(location));
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

/**
 * The pool's bounds from the checked settings: `workerCount` sets both, when neither bound is `given`;
 * otherwise `maxWorkers` defaults to the available parallelism.
 */
export function workerBounds(
  { workerCount, minWorkers, maxWorkers }: Pick<ResolvedOf<'proxy'>, 'workerCount' | 'minWorkers' | 'maxWorkers'>,
  given: Pick<ServiceProxyOptions, 'minWorkers' | 'maxWorkers'>,
): { minWorkers: number; maxWorkers: number } {
  if (workerCount !== undefined) {
    if (given.minWorkers !== undefined || given.maxWorkers !== undefined) {
      throw new ERR_INVALID_OPTION('workerCount', 'used without minWorkers and maxWorkers', 'both');
    }
    return { minWorkers: workerCount, maxWorkers: workerCount };
  }
  const max = maxWorkers ?? Math.max(minWorkers, 1, os.availableParallelism());
  if (max < minWorkers) {
    throw new ERR_OPTION_OUT_OF_RANGE('maxWorkers', `>= minWorkers (${minWorkers})`, String(max));
  }
  return { minWorkers, maxWorkers: max };
}

/** The proxy's options: every setting checked in the table's order, then the options computed from them. */
export function resolveOptions(options: ServiceProxyOptions): ResolvedOptions {
  const { workerCount, proxyProtocolFrom, proxyProtocolTimeout, ...checked } = resolveSettings('proxy', options);
  const { server, transport, proxyProtocol } = checked;
  const { minWorkers, maxWorkers } = workerBounds({ ...checked, workerCount }, options);
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
  return {
    ...checked,
    workerURL: moduleURL(checked.workerURL),
    minWorkers,
    maxWorkers,
    workerOptions: checked.workerOptions ?? {},
    trustProxy: checked.trustProxy?.length ? blockList(checked.trustProxy) : undefined,
    proxyProtocol: proxyProtocol
      ? { timeout: proxyProtocolTimeout, trusted: proxyProtocolFrom && blockList(proxyProtocolFrom) }
      : undefined,
  };
}
