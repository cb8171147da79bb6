// socketnaut's Socket.IO adapter, for an app that sets it itself:
// `new Server(httpServer, { adapter: createAdapter() })`. In a socketnaut worker, a server left with
// Socket.IO's in-memory adapter gets it without this.
export { createAdapter, WorkerThreadsAdapter, type WorkerThreadsAdapterOptions } from '../lib/socketio/adapter.ts';
