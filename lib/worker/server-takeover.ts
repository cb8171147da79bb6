import net from 'node:net';

interface Serving {
  markServing(): void;
  stop(callback?: () => void): void;
  readonly stopping: boolean;
}

/**
 * Makes `server` behave as if it listened on the proxy's public address without opening any port:
 * the proxy is the only way in. `listen()` reports success, `address()` gives the public address,
 * and `close()` stops new connections and emits 'close' once the open ones have ended.
 */
export function takeOverServer(server: net.Server, agent: Serving, publicAddress: net.AddressInfo | string | null): void {
  let listening = false;
  Object.defineProperty(server, 'listening', { configurable: true, get: () => listening });
  server.address = () => (listening ? publicAddress : null);

  server.listen = function listen(...args: unknown[]): net.Server {
    const callback = args.at(-1);
    if (typeof callback === 'function') server.once('listening', callback as () => void);
    if (!listening && !agent.stopping) {
      listening = true;
      process.nextTick(() => {
        server.emit('listening');
        agent.markServing();
      });
    }
    return server;
  } as net.Server['listen'];

  server.close = function close(callback?: (err?: Error) => void): net.Server {
    if (callback) server.once('close', callback);
    if (agent.stopping) return server;
    listening = false;
    agent.stop(() => server.emit('close'));
    return server;
  };
}

/**
 * In a socketnaut worker, the first server that calls listen() is the one the proxy feeds, whether
 * or not the module created an agent for it. Other servers listen as usual.
 */
export function interceptListen(claim: (server: net.Server) => net.Server | undefined): void {
  const originalListen = net.Server.prototype.listen;
  net.Server.prototype.listen = function listen(this: net.Server, ...args: unknown[]) {
    const claimed = claim(this);
    if (claimed) return (claimed.listen as (...a: unknown[]) => net.Server)(...args);
    return (originalListen as (...a: unknown[]) => net.Server).apply(this, args);
  } as net.Server['listen'];
}
