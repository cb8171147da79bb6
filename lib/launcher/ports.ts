// The launcher's ports: the public one, and those of its own servers beside the proxy.
import { once } from 'node:events';
import net from 'node:net';
import { ERR_LISTEN, ERR_PORT_IN_USE, withCause } from '../errors.ts';
import type { ServiceProxy } from '../main/service-proxy.ts';

/**
 * Listens on the public port. With `reusePort` (for the reuseport transport, whose workers' listeners
 * join this one), the port is first bound without it: SO_REUSEPORT would let this listener share a
 * port already in use by a process of the same user, rather than fail.
 */
export async function listen(
  server: net.Server,
  port: number,
  host: string | undefined,
  reusePort = false,
): Promise<void> {
  if (reusePort) port = await freePort(port, host);
  server.listen({ port, host, reusePort });
  await listening(server, port, host);
}

async function freePort(port: number, host: string | undefined): Promise<number> {
  const probe = net.createServer();
  probe.listen({ port, host });
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

export function formatHost(host: string | undefined): string {
  if (!host || host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}
