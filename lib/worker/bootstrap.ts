// The entry module of every worker a ServiceProxy starts. It connects to the proxy, makes the first
// listening server the proxied one, then runs the user's module with the user's own workerData.
import workerThreads from 'node:worker_threads';
import { syncBuiltinESMExports } from 'node:module';
import { isBootData, markModuleLoaded, setWorkerContext } from './context.ts';
import { interceptListen } from './server-takeover.ts';
import { listenForPipe } from './pipe-listener.ts';
import { adoptMovedSocket } from './adopt-socket.ts';
import { agentFor, currentAgent } from '../service-agent.ts';
import { serializeError, type FromWorker, type ToWorker } from '../messages.ts';
import { parseProxyHeader } from '../proxy-protocol.ts';
import { readPrefix } from '../read-prefix.ts';

const context = workerThreads.workerData;
if (!isBootData(context)) throw new Error('socketnaut: the worker bootstrap was started without its boot data');

const { port } = context;
const post = (message: FromWorker): void => port.postMessage(message);

setWorkerContext(context);
(workerThreads as { workerData: unknown }).workerData = context.userWorkerData;
syncBuiltinESMExports();

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'connection': {
      const agent = currentAgent()!;
      const { acceptedAt, peer } = message;
      const socket = adoptMovedSocket(message.socket);
      if (acceptedAt !== undefined) agent.recordHandoff(acceptedAt);
      // The main thread must not read a socket it moves, so a PROXY header is read here.
      if (context.proxyHeaderTimeout === undefined) agent.accept(socket, undefined, peer);
      else {
        readPrefix(socket, parseProxyHeader, context.proxyHeaderTimeout, (outcome) => {
          if (outcome.status === 'ok') agent.accept(socket, outcome.info, peer);
          else agent.reject(socket, peer ?? socket.remoteAddress ?? '', outcome.reason);
        });
      }
      break;
    }
    case 'retire': {
      const agent = currentAgent();
      if (agent) agent.server.close();
      else post({ type: 'drained' });
      break;
    }
  }
});

try {
  if (context.transport === 'pipe') {
    await listenForPipe(context.pipePath!, context.token, (socket, info, peer, id) => currentAgent()!.accept(socket, info, peer, id));
  }
  interceptListen((server) => {
    const agent = currentAgent();
    if (agent && agent.server !== server) return undefined;
    return agentFor(server, false).server;
  }, context.publicAddress);
  await import(context.moduleURL);
} catch (err) {
  post({ type: 'bootstrap-error', error: serializeError(err) });
  throw err;
}

// Also makes ready a module that created its agent but never called listen().
markModuleLoaded();
currentAgent()?.markServing();
