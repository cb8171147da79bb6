import type net from 'node:net';
import type { FromWorker, ListenFailure, ToWorker } from '../protocol/messages.ts';
import { seemToListen } from '../protocol/seeming-listen.ts';
import { askedAddress, parseListenArgs } from './listen-args.ts';

type ListenResult = Extract<ToWorker, { type: 'listen-result' }>;

interface Shared {
  server: net.Server;
  /** Connections given to the server and not yet closed. */
  open: number;
  closing: boolean;
  /** Emits the server's 'close', once closing and its last connection has ended. */
  closed: () => void;
}

export interface SharedServerHooks {
  post(message: FromWorker): void;
  /** Starts taking piped connections at `path`, before the server says it listens. */
  takePipedConnections(path: string): Promise<void>;
}

/**
 * A worker's servers other than the one on the public port. As under node:cluster, each listen() is
 * opened once, on the main thread, for every worker that asks: the server here gets the connections
 * the proxy gives it, reports the address really bound, or raises the error binding raised. Kept on
 * globalThis, as the worker context is, so that every copy of socketnaut in the worker sees it.
 */
class SharedServers {
  readonly #hooks: SharedServerHooks;
  readonly #pending = new Map<number, { server: net.Server; args: unknown[] }>();
  readonly #byListener = new Map<number, Shared>();
  /** How many listen(0) calls this worker made per host: the nth gets the same port in every worker. */
  readonly #zeroPortCalls = new Map<string, number>();
  #nextRequest = 0;

  constructor(hooks: SharedServerHooks) {
    this.#hooks = hooks;
  }

  /** Listens through the proxy, or returns false for arguments it does not share (a handle, an fd). */
  listen(server: net.Server, args: unknown[]): boolean {
    const request = parseListenArgs(args);
    if (!request) return false;
    if (request.path === undefined && request.port === 0) {
      const host = request.host ?? '';
      const call = this.#zeroPortCalls.get(host) ?? 0;
      this.#zeroPortCalls.set(host, call + 1);
      request.key += `#${call}`;
    }
    const id = ++this.#nextRequest;
    this.#pending.set(id, { server, args });
    this.#hooks.post({ type: 'listen', request: id, listen: request });
    return true;
  }

  async settle(result: ListenResult): Promise<void> {
    const pending = this.#pending.get(result.request);
    if (!pending) return;
    this.#pending.delete(result.request);
    const { server, args } = pending;
    if (result.failure) {
      server.emit('error', listenError(result.failure));
      return;
    }
    if (result.pipePath) {
      try {
        await this.#hooks.takePipedConnections(result.pipePath);
      } catch (err) {
        this.#hooks.post({ type: 'unlisten', sharedPort: result.sharedPort });
        server.emit('error', err);
        return;
      }
    }
    const shared: Shared = { server, open: 0, closing: false, closed: () => {} };
    this.#byListener.set(result.sharedPort, shared);
    const seeming = seemToListen(server, (closed) => {
      shared.closing = true;
      shared.closed = closed;
      this.#hooks.post({ type: 'unlisten', sharedPort: result.sharedPort });
      (server as net.Server & { closeIdleConnections?: () => void }).closeIdleConnections?.();
      this.#closeIfDone(result.sharedPort, shared);
    });
    seeming.listen(result.address ?? askedAddress(args), args.at(-1));
  }

  /** Whether `listener`'s server still takes connections: false once its app closed it. */
  takes(listener: number): boolean {
    const shared = this.#byListener.get(listener);
    return shared !== undefined && !shared.closing;
  }

  /** The server for `listener`'s connections, counting one in; undefined once it stopped taking them. */
  take(listener: number, socket: net.Socket): net.Server | undefined {
    const shared = this.#byListener.get(listener);
    if (!shared || shared.closing) return undefined;
    shared.open++;
    socket.once('close', () => {
      shared.open--;
      if (shared.closing) this.#closeIfDone(listener, shared);
    });
    return shared.server;
  }

  /** The servers still taking connections. */
  servers(): net.Server[] {
    return [...this.#byListener.values()].filter((shared) => !shared.closing).map((shared) => shared.server);
  }

  #closeIfDone(listener: number, shared: Shared): void {
    if (shared.open > 0 || this.#byListener.get(listener) !== shared) return;
    this.#byListener.delete(listener);
    process.nextTick(shared.closed);
  }
}

const kShared = Symbol.for('socketnaut.sharedServers');
type Global = { [kShared]?: SharedServers };

export function sharedServers(hooks?: SharedServerHooks): SharedServers | undefined {
  const global = globalThis as Global;
  if (hooks) global[kShared] ??= new SharedServers(hooks);
  return global[kShared];
}

export type { SharedServers };

export function listenError(failure: ListenFailure): NodeJS.ErrnoException {
  const err = new Error(failure.message) as NodeJS.ErrnoException & { address?: string; port?: number };
  if (failure.code !== undefined) err.code = failure.code;
  if (failure.errno !== undefined) err.errno = failure.errno;
  if (failure.syscall !== undefined) err.syscall = failure.syscall;
  if (failure.address !== undefined) err.address = failure.address;
  if (failure.port !== undefined) err.port = failure.port;
  return err;
}
