// Types only: importing node:http or node:tls would load undici or root certificates into every
// worker (see ../builtins.ts).
import type http from 'node:http';
import type net from 'node:net';
import type tls from 'node:tls';
import type { ServerDefaults } from '../protocol/messages.ts';
import { seemToListen } from '../protocol/seeming-listen.ts';
import { askedAddress } from './listen-args.ts';

// Node's own defaults: a server that still has them was not configured by its author.
const NODE_HEADERS_TIMEOUT = 60_000;
const NODE_REQUEST_TIMEOUT = 300_000;
const NODE_CHECKING_INTERVAL = 30_000;

// https.Server is not an http.Server subclass, but both carry the same deadlines.
function isHttpServer(server: net.Server): server is http.Server {
  return typeof (server as Partial<http.Server>).headersTimeout === 'number';
}

/**
 * Tightens the deadlines of an HTTP server its author left at Node's defaults. Node enforces them
 * only when it checks its connections, so the checks run often enough to meet the deadline.
 */
function applyServerDefaults(server: http.Server, defaults: ServerDefaults): void {
  const settings = server as http.Server & { connectionsCheckingInterval: number };
  if (defaults.headersTimeout !== undefined && server.headersTimeout === NODE_HEADERS_TIMEOUT) {
    server.headersTimeout = defaults.headersTimeout;
  }
  if (defaults.requestTimeout !== undefined && server.requestTimeout === NODE_REQUEST_TIMEOUT) {
    server.requestTimeout = defaults.requestTimeout;
  }
  if (settings.connectionsCheckingInterval === NODE_CHECKING_INTERVAL) {
    const shortest = Math.min(server.headersTimeout || Infinity, server.requestTimeout || Infinity);
    settings.connectionsCheckingInterval = Math.max(250, Math.min(1000, shortest / 4));
  }
}

/**
 * Gives a TLS server the proxy's session ticket keys, unless its author chose keys of their own: a
 * client that comes back then resumes its session on whichever worker it reaches, instead of paying
 * for a full handshake whenever it lands on another one. A new secure context (a certificate
 * rotated with setSecureContext()) would otherwise bring fresh keys of its own.
 */
export function shareTicketKeys(server: net.Server, keys: Uint8Array): void {
  const tlsServer = server as tls.Server & { ticketKeys?: Buffer };
  if (typeof tlsServer.setTicketKeys !== 'function') return;
  const shared = Buffer.from(keys.buffer, keys.byteOffset, keys.byteLength);
  const share = (): void => {
    if (!tlsServer.ticketKeys) tlsServer.setTicketKeys(shared);
  };
  share();
  const setSecureContext = tlsServer.setSecureContext;
  tlsServer.setSecureContext = function (options: tls.SecureContextOptions): void {
    setSecureContext.call(this, options);
    share();
  };
}

interface Serving {
  markServing(): void;
  stop(callback?: () => void): void;
}

/**
 * Makes `server` behave as if it listened on the proxy's public address without opening any port:
 * the proxy is the only way in. `listen()` reports success, `address()` gives the public address,
 * and `close()` stops new connections and emits 'close' once the open ones have ended.
 */
export function takeOverServer(
  server: net.Server,
  agent: Serving,
  publicAddress: net.AddressInfo | string | null,
  defaults: ServerDefaults | undefined,
): void {
  if (defaults && isHttpServer(server)) applyServerDefaults(server, defaults);
  const seeming = seemToListen(server, (closed) => agent.stop(closed));
  server.listen = function listen(...args: unknown[]): net.Server {
    // Without the proxy's address (its server still binding when this worker started), the one the
    // app asked for: frameworks read address() in the 'listening' event, and Fastify throws on null.
    seeming.listen(publicAddress ?? askedAddress(args), args.at(-1), () => agent.markServing());
    return server;
  } as net.Server['listen'];
}
