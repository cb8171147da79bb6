// Types only: importing node:http or node:tls would load undici or root certificates into every
// worker (see ../builtins.ts).
import type http from 'node:http';
import type net from 'node:net';
import type tls from 'node:tls';
import type { ServerDefaults } from '../protocol/messages.ts';
import { type ServerAddress, seemToListen } from '../protocol/seeming-listen.ts';
import { askedAddress } from './listen-args.ts';
import { listenPublic } from './public-listen.ts';

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

// The answer to the server's listen on the public port, on the server itself, where any copy of
// socketnaut in the worker finds it.
const kBound = Symbol.for('socketnaut.publicPortBound');
type Asking = net.Server & { [kBound]?: Promise<ServerAddress | null> };

/** Asks for the public port once for `server`; a listen() that failed may ask again. */
function bindPublicPort(server: net.Server, args: unknown[]): Promise<ServerAddress | null> {
  const asking = server as Asking;
  asking[kBound] ??= new Promise((resolve, reject) =>
    listenPublic(server, args, (address, failure) => {
      if (!failure) return resolve(address);
      delete asking[kBound];
      reject(failure);
    }),
  );
  return asking[kBound];
}

/**
 * Makes `server` behave as if it listened on the proxy's public port without opening any: the proxy
 * is the only way in. `listen()` asks the main thread for the public port where the app asks, then
 * seems to listen, `address()` giving the address bound (a failed bind is the server's 'error');
 * `close()` stops new connections and emits 'close' once the open ones have ended.
 */
export function takeOverServer(server: net.Server, agent: Serving, defaults: ServerDefaults | undefined): void {
  if (defaults && isHttpServer(server)) applyServerDefaults(server, defaults);
  const seeming = seemToListen(server, (closed) => agent.stop(closed));
  server.listen = function listen(...args: unknown[]): net.Server {
    const callback = args.at(-1);
    bindPublicPort(server, args).then(
      (address) => seeming.listen(address ?? askedAddress(args), callback, () => agent.markServing()),
      (err: Error) => {
        if (typeof callback === 'function') server.once('listening', callback as () => void);
        server.emit('error', err);
      },
    );
    return server;
  } as net.Server['listen'];
}

/**
 * Marks `agent` serving once the public port is bound for its server. One whose app made it but has
 * not called listen() serves at once where the port is bound already; where it is not, the port
 * waits for the app to say where (a listen() later marks it serving).
 */
export function markServingOnceBound(
  agent: Serving & { server: net.Server },
  publicAddress: ServerAddress | null,
): void {
  const bound = (agent.server as Asking)[kBound];
  if (bound)
    bound.then(
      () => agent.markServing(),
      () => {},
    );
  else if (publicAddress !== null) agent.markServing();
}
