// What the framework plugins share: where a request's client address comes from.
import type http from 'node:http';
import type net from 'node:net';
import { addressInfoOf, canonicalAddress, type ProxySocketAddressInfo } from '../lib/protocol/address-info.ts';
import { forwardedClient } from '../lib/protocol/forwarded.ts';
import { getWorkerContext } from '../lib/worker/context.ts';
import { currentAgent, type ServiceAgent } from '../lib/worker/service-agent.ts';
import { ERR_PLUGIN_REGISTERED_TWICE } from '../lib/errors.ts';

export type { ProxySocketAddressInfo };

// One object per connection, so that every request on a keep-alive connection sees the same one.
const known = new WeakMap<net.Socket, ProxySocketAddressInfo>();

/**
 * The agent that fed `socket` to its server. A socket the proxy did not bring (a server of the
 * worker's own that really listens, or Fastify's inject()) is not the agent's to describe.
 */
function agentOf(socket: net.Socket): ServiceAgent | undefined {
  const agent = currentAgent();
  return agent !== undefined && (socket as { server?: unknown }).server === agent.server ? agent : undefined;
}

/**
 * The connection's address info, known at once: the agent's for a connection the proxy brought, the
 * socket's own otherwise. Undefined for a connection with no IP address (a Unix socket the app
 * listens on itself, outside a worker), as Node's `remoteAddress` is.
 */
export function addressInfo(socket: net.Socket): ProxySocketAddressInfo | undefined {
  let info = known.get(socket);
  if (info) return info;
  const agent = agentOf(socket);
  if (agent) return agent.getProxySocketAddressInfo(socket);
  info = addressInfoOf(socket);
  if (info) known.set(socket, info);
  return info;
}

/** The client's IP address, an IPv4 client in dotted form; undefined only where remoteAddress is. */
export function clientAddressOf(info: ProxySocketAddressInfo | undefined): string {
  return (info && canonicalAddress(info.remote.address)) as string;
}

/**
 * The client of one request: the connection's, unless that is a trusted reverse proxy (trustProxy),
 * whose forwarding headers then name it. Per request, since a proxy's keep-alive connection carries
 * many clients.
 */
export function requestClientAddress(req: http.IncomingMessage, info: ProxySocketAddressInfo | undefined): string {
  const trustProxy = getWorkerContext()?.trustProxy;
  if (!trustProxy || !info) return clientAddressOf(info);
  return forwardedClient(req.headers, info.remote.address, trustProxy);
}

// Shared by name so that two copies of socketnaut in one app still see each other's mark.
const kSeen = Symbol.for('socketnaut.plugin.seen');

/**
 * Marks the request as decorated by `plugin`; throws if a socketnaut middleware already ran for it,
 * which means the app (or an app it is mounted in) uses the middleware twice.
 */
export function markRequest(req: object, plugin: string): void {
  const carrier = req as { [kSeen]?: true };
  if (carrier[kSeen]) {
    throw new ERR_PLUGIN_REGISTERED_TWICE(plugin, 'use the middleware once, in the outermost app');
  }
  carrier[kSeen] = true;
}
