// The entry module of every worker a ServiceProxy starts. It connects to the proxy, makes the first
// listening server the proxied one, then runs the user's module with the user's own workerData.
import workerThreads from 'node:worker_threads';
import { syncBuiltinESMExports } from 'node:module';
import { serializeError, type ConcreteTransportName, type FromWorker, type ToWorker } from '../protocol/messages.ts';
import { handoffWorker } from '../transports/handoff/worker.ts';
import { pipeWorker } from '../transports/pipe/worker.ts';
import type { WorkerTransport } from '../transports/worker-transport.ts';
import { isBootData, markModuleLoaded, setWorkerContext } from './context.ts';
import { interceptListen } from './server-takeover.ts';
import { agentFor, currentAgent } from './service-agent.ts';
import { deliverSignal, exitWorker, keepSelfSignalsInWorker } from './signals.ts';
import { reportClientAddresses } from './socket-addresses.ts';

const workerTransports: Record<ConcreteTransportName, WorkerTransport> = { handoff: handoffWorker, pipe: pipeWorker };

const context = workerThreads.workerData;
if (!isBootData(context)) throw new Error('socketnaut: the worker bootstrap was started without its boot data');

const { port } = context;
const post = (message: FromWorker): void => port.postMessage(message);

setWorkerContext(context);
(workerThreads as { workerData: unknown }).workerData = context.userWorkerData;
syncBuiltinESMExports();
reportClientAddresses();

const stop = (): void => {
  const agent = currentAgent();
  if (agent) agent.server.close();
  else post({ type: 'drained' });
};
keepSelfSignalsInWorker(stop);

port.on('message', (message: ToWorker) => {
  if (message.type === 'exit') exitWorker();
  if (message.type !== 'retire') return;
  if (message.signal) deliverSignal(message.signal);
  stop();
});

try {
  await workerTransports[context.transport].start(context, () => currentAgent()!);
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
