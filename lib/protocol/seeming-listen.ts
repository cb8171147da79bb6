// A server that seems to listen: its socket is elsewhere (on the main thread, or lent to a worker) or
// nowhere, yet it answers as a listening server does. A leaf, for either side.
import type net from 'node:net';

export type ServerAddress = net.AddressInfo | string;

/**
 * Makes `server` answer `listening` and `address()` from `current`, the address it seems to listen
 * on or null: it listens exactly while `current()` is not null, so address() is never null then.
 */
export function answerAsListening(server: net.Server, current: () => ServerAddress | null): void {
  Object.defineProperty(server, 'listening', { configurable: true, get: () => current() !== null });
  Object.defineProperty(server, 'address', { configurable: true, writable: true, value: current });
}

export interface SeemingListen {
  /**
   * Starts seeming to listen on `address`: `listening` and address() answer so at once, and
   * 'listening' is emitted on the next tick, as Node emits it, then `listened` is called. `callback`,
   * listen()'s own, is a 'listening' listener even when nothing starts: the server already seems to
   * listen, or was closed.
   */
  listen(address: ServerAddress, callback?: unknown, listened?: () => void): void;
}

/**
 * Makes `server` seem to listen once told to (see SeemingListen). Its close() stops that at once,
 * then, the first time only, calls `stop`, which calls back when the server's last connection has
 * ended: 'close' is emitted then. close()'s callback is a 'close' listener. A later close() is
 * answered as Node answers it: its callback gets ERR_SERVER_NOT_RUNNING at the next 'close', emitted
 * again if the server has drained already (Apollo Server's drain closes the server after the launcher
 * did, and waits for that callback).
 */
export function seemToListen(server: net.Server, stop: (closed: () => void) => void): SeemingListen {
  let current: ServerAddress | null = null;
  let closed = false;
  let drained = false;
  answerAsListening(server, () => current);
  server.close = function close(callback?: (err?: Error) => void): net.Server {
    if (closed) {
      if (callback) server.once('close', () => callback(notRunning()));
      if (drained) process.nextTick(() => server.emit('close'));
      return server;
    }
    if (callback) server.once('close', callback);
    closed = true;
    current = null;
    stop(() => {
      drained = true;
      server.emit('close');
    });
    return server;
  };
  return {
    listen(address, callback, listened) {
      if (typeof callback === 'function') server.once('listening', callback as () => void);
      if (current !== null || closed) return;
      current = address;
      process.nextTick(() => {
        server.emit('listening');
        listened?.();
      });
    },
  };
}

/** Node's own error for close() on a server that is not listening. */
function notRunning(): Error {
  return Object.assign(new Error('Server is not running.'), { code: 'ERR_SERVER_NOT_RUNNING' });
}
