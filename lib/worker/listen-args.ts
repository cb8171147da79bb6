// listen()'s overloads, read as net.Server reads them.
import net from 'node:net';
import type { ListenRequest } from '../protocol/messages.ts';

/** The port a listen() names, however it names it; undefined for none (a path, a handle). */
export function requestedPort(args: unknown[]): number | undefined {
  const [first] = args;
  const port = typeof first === 'object' && first !== null ? (first as net.ListenOptions).port : first;
  if (typeof port === 'number') return port;
  if (typeof port === 'string' && /^\d+$/.test(port)) return Number(port);
  return undefined;
}

export function namesPath(args: unknown[]): boolean {
  const [first] = args;
  if (typeof first === 'string') return !/^\d+$/.test(first);
  return typeof first === 'object' && first !== null && typeof (first as net.ListenOptions).path === 'string';
}

function toPort(value: unknown): number | undefined {
  if (value === undefined || value === null) return 0;
  const port = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  return typeof port === 'number' && Number.isInteger(port) && port >= 0 && port <= 65535 ? port : undefined;
}

/** The listen() as the main thread can open it; undefined for what is left to Node (a handle, an fd, a bad port). */
export function parseListenArgs(args: unknown[]): ListenRequest | undefined {
  const rest = typeof args.at(-1) === 'function' ? args.slice(0, -1) : args;
  const [first, second, third] = rest;
  let request: Omit<ListenRequest, 'key'>;
  if (typeof first === 'object' && first !== null) {
    const options = first as net.ListenOptions & { fd?: unknown; _handle?: unknown };
    if (options.handle !== undefined || options.fd !== undefined || options._handle !== undefined) return undefined;
    if (typeof options.path === 'string') request = { path: options.path, backlog: options.backlog };
    else {
      const port = toPort(options.port);
      if (port === undefined) return undefined;
      request = { port, host: options.host, backlog: options.backlog, ipv6Only: options.ipv6Only };
    }
  } else if (typeof first === 'string' && !/^\d+$/.test(first)) {
    request = { path: first, backlog: typeof second === 'number' ? second : undefined };
  } else {
    const port = toPort(first);
    if (port === undefined) return undefined;
    const host = typeof second === 'string' ? second : undefined;
    const backlog = typeof second === 'number' ? second : typeof third === 'number' ? third : undefined;
    request = { port, host, backlog };
  }
  const key = request.path !== undefined ? `path:${request.path}` : `tcp:${request.host ?? ''}:${request.port}`;
  return { ...request, key };
}

/**
 * The address a server listening with `args` would report, as far as they tell it: the path, or the
 * host and port asked for (a port 0 stays 0, a host name is not resolved). For a server that seems
 * to listen on the proxy's address while the proxy has none to give.
 */
export function askedAddress(args: unknown[]): net.AddressInfo | string {
  const request = parseListenArgs(args);
  if (request?.path !== undefined) return request.path;
  const address = request?.host ?? '::';
  return { address, family: net.isIPv6(address) ? 'IPv6' : 'IPv4', port: request?.port ?? 0 };
}
