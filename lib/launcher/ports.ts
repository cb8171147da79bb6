// The launcher's ports: the public one, and those of its own servers beside the proxy.
import { once } from 'node:events';
import net from 'node:net';
import { ERR_LISTEN, ERR_PORT_IN_USE, withCause } from '../errors.ts';
import type { PublicBinder } from '../main/public-port.ts';
import type { ServiceProxy } from '../main/service-proxy.ts';
import type { PublicListen } from '../protocol/messages.ts';

/** Where the public port is bound: always its port; the rest as asked. */
export interface PublicAddress {
  port: number;
  host?: string | undefined;
  ipv6Only?: boolean | undefined;
  backlog?: number | undefined;
}

/**
 * Listens on the public port. With `reusePort` (for the reuseport transport, whose workers' listeners
 * join this one), the port is first bound without it: SO_REUSEPORT would let this listener share a
 * port already in use by a process of the same user, rather than fail.
 */
export async function listen(server: net.Server, address: PublicAddress, reusePort = false): Promise<void> {
  const { host, ipv6Only, backlog } = address;
  const port = reusePort ? await freePort(address) : address.port;
  server.listen({ port, host, ipv6Only, backlog, reusePort });
  await listening(server, port, host);
}

/** A port that was free a moment ago where `address` says: its own port, unless that is 0. */
export async function freePort({ port, host, ipv6Only }: PublicAddress): Promise<number> {
  const probe = net.createServer();
  probe.listen({ port, host, ipv6Only });
  await listening(probe, port, host);
  const bound = boundPort(probe);
  probe.close();
  await once(probe, 'close');
  return bound;
}

async function listening(server: net.Server, port: number, host: string | undefined): Promise<void> {
  try {
    await once(server, 'listening');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const where = `${formatHost(host)}:${port}`;
    if (code === 'EADDRINUSE') throw withCause(new ERR_PORT_IN_USE(where), err);
    throw withCause(new ERR_LISTEN(where, (err as Error).message), err);
  }
}

/** Binds the public port where the workers' apps ask (see publicBinding()), and says what the first one serves. */
export interface PublicBinding {
  binder: PublicBinder;
  /** The first app's listen on the public port, once it listened. */
  served(): PublicListen | undefined;
}

/**
 * Binds the public port where the workers' apps ask, as node:cluster's primary binds a port where a
 * worker asks: the first address on `server`, with the launcher's coded errors; any other (a
 * framework that listens on 'localhost' binds each address it resolves to) on a new server of the
 * same kind, failing as Node's listen() fails. Unless `told`: bound where the launcher was told
 * (--host), `server` serves every address asked for.
 */
export function publicBinding(
  server: net.Server,
  createServer: () => net.Server,
  { port, told, reusePort }: { port: number; told: boolean; reusePort: boolean },
): PublicBinding {
  let served: PublicListen | undefined;
  const binder: PublicBinder = async (asked) => {
    const first = served === undefined;
    served ??= asked;
    if (told) return server;
    const address = { port, host: asked.host, ipv6Only: asked.ipv6Only, backlog: asked.backlog };
    if (first) {
      await listen(server, address, reusePort);
      return server;
    }
    const other = createServer();
    other.listen(address);
    await once(other, 'listening');
    return other;
  };
  return { binder, served: () => served };
}

/** Starts a server of the launcher's own beside the proxy; if it cannot listen, stops what started and says why. */
export async function besideProxy<T>(
  proxy: ServiceProxy,
  address: { port: number; host?: string },
  serve: () => Promise<T>,
  started?: { close(): Promise<void> },
): Promise<T> {
  try {
    return await serve();
  } catch (err) {
    await Promise.all([proxy.shutdown({ timeout: 0 }), started?.close()]);
    const where = `${formatHost(address.host)}:${address.port}`;
    throw (err as NodeJS.ErrnoException).code === 'EADDRINUSE'
      ? withCause(new ERR_PORT_IN_USE(where), err)
      : withCause(new ERR_LISTEN(where, (err as Error).message), err);
  }
}

export function boundPort(server: net.Server): number {
  return (server.address() as net.AddressInfo).port;
}

/** `host:port`, as a URL names it. */
export function formatAddress({ address, port }: net.AddressInfo): string {
  return `${address.includes(':') ? `[${address}]` : address}:${port}`;
}

export function formatHost(host: string | undefined): string {
  if (!host || host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}
