// socketnaut's Socket.IO adapter, for an app that sets it itself:
// `new Server(httpServer, { adapter: createAdapter() })`. In a socketnaut worker, a server left with
// Socket.IO's in-memory adapter gets it without this.
import { type Namespace, WorkerThreadsAdapter, type WorkerThreadsAdapterOptions } from '../lib/socketio/adapter.ts';

export { WorkerThreadsAdapter, type WorkerThreadsAdapterOptions };

/**
 * An adapter for Socket.IO's `adapter` option or `io.adapter()`: broadcasts, rooms, `fetchSockets()`,
 * `serverSideEmit()` and the other utility methods reach the Socket.IO servers of every worker thread
 * of the process (of the one ServiceProxy, in its workers).
 */
export function createAdapter(options: WorkerThreadsAdapterOptions = {}): typeof WorkerThreadsAdapter {
  const WorkerThreadsAdapterWithOptions = class extends WorkerThreadsAdapter {
    constructor(nsp: Namespace) {
      super(nsp, options);
    }
  };
  return WorkerThreadsAdapterWithOptions;
}
