// Socket.IO as it loads in a socketnaut worker: a server left with the in-memory adapter gets
// socketnaut's instead. Socket.IO's Server constructor takes its adapter with
// `this.adapter(opts.adapter || Adapter)`; so the first call of adapter() on each server, with the
// in-memory class while the options name none, is the default being taken, and only that call changes.
//
// Each server has its own channels, named by the order in which the worker made it: the workers run the
// same app, so its first server in one worker reaches the first in the others, and never its second.
import { createAdapter } from './adapter.ts';

interface Server {
  opts?: { adapter?: unknown };
}

type AdapterMethod = (this: Server, ...adapter: unknown[]) => unknown;

const kPatched = Symbol.for('socketnaut.socketio.patched');
/** The servers of this worker that took the default, whichever copy of socket.io made them. */
let serversMade = 0;

interface SocketIO {
  Server?: { prototype: { adapter?: AdapterMethod; [kPatched]?: true } };
}

interface InMemoryAdapters {
  Adapter?: unknown;
  SessionAwareAdapter?: unknown;
}

/**
 * Patches the Server of a socket.io module just evaluated. `socketioRequire` is that module's own
 * require, which finds the socket.io-adapter that it uses.
 */
export function installDefaultAdapter(socketio: SocketIO, socketioRequire: NodeJS.Require): void {
  const prototype = socketio.Server?.prototype;
  const setAdapter = prototype?.adapter;
  if (!prototype || typeof setAdapter !== 'function' || prototype[kPatched]) return;
  const { Adapter, SessionAwareAdapter } = socketioRequire('socket.io-adapter') as InMemoryAdapters;
  // The adapter needs Socket.IO 4.6 or later, the first with socket.io-adapter 2.5 and its SessionAwareAdapter.
  if (typeof SessionAwareAdapter !== 'function') return;
  const inMemory = new Set([Adapter, SessionAwareAdapter]);
  const configured = new WeakSet<Server>();
  prototype[kPatched] = true;
  prototype.adapter = function adapter(this: Server, ...args: unknown[]): unknown {
    if (args.length === 0 || configured.has(this)) return setAdapter.apply(this, args);
    configured.add(this);
    const taken = inMemory.has(args[0]) && this.opts?.adapter === undefined;
    return setAdapter.call(this, taken ? createAdapter({ key: `server ${++serversMade}` }) : args[0]);
  };
}
