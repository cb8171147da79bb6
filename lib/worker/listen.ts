import net from 'node:net';
import { seemToListen } from '../protocol/seeming-listen.ts';
import { askedAddress, namesPath, requestedPort } from './listen-args.ts';
import { listenPublic } from './public-listen.ts';
import type { SharedServers } from './shared-servers.ts';

/** Marks a server of socketnaut's own in the worker (the pipe transport's), which listens as usual. */
export const kInternalServer = Symbol.for('socketnaut.internalServer');

export interface ListenRouting {
  /** The server the proxy feeds, if this listen() makes `server` it; undefined otherwise. */
  claim(server: net.Server, port: number | undefined, namesPath: boolean): net.Server | undefined;
  /** The public port as the app was told it (PORT), when it was. */
  publicPort: number | undefined;
  shared: SharedServers;
}

/**
 * Routes every listen() of a worker, as node:cluster routes a worker's listens through its primary:
 * the server the proxy feeds takes the public port without opening any; another server on that same
 * port pretends to listen, the proxy's server taking its connections (a framework listening on
 * 'localhost' opens one server per address it resolves to, and none may open a way around the
 * proxy); any other listen is opened once, on the main thread, for every worker that asks. The
 * public port is bound where the app asks, by the main thread. Nothing ever listens in a worker.
 */
export function interceptListen({ claim, publicPort, shared }: ListenRouting): void {
  const originalListen = net.Server.prototype.listen as (...args: unknown[]) => net.Server;
  let claimedPort: number | undefined;
  net.Server.prototype.listen = function listen(this: net.Server & { [kInternalServer]?: true }, ...args: unknown[]) {
    if (this[kInternalServer]) return originalListen.apply(this, args);
    const port = requestedPort(args);
    const claimed = claim(this, port, namesPath(args));
    if (claimed) {
      claimedPort ??= port;
      return (claimed.listen as (...a: unknown[]) => net.Server)(...args);
    }
    if (port !== undefined && port !== 0 && (port === claimedPort || port === publicPort))
      return pretendToListen(this, args);
    if (shared.listen(this, args)) return this;
    return originalListen.apply(this, args);
  } as net.Server['listen'];
}

// Its address is asked for too: under the launcher, the public port is bound there as well (a
// framework that listens on 'localhost' binds each address it resolves to).
function pretendToListen(server: net.Server, args: unknown[]): net.Server {
  const seeming = seemToListen(server, (closed) => process.nextTick(closed));
  listenPublic(server, args, (address, failure) => {
    if (failure) server.emit('error', failure);
    else seeming.listen(address ?? askedAddress(args), args.at(-1));
  });
  return server;
}
