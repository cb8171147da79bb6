// The entry module of every worker a ServiceProxy starts. It connects to the proxy, routes the
// worker's listens through it, then runs the user's module with the user's own workerData.
import workerThreads from 'node:worker_threads';
import { syncBuiltinESMExports } from 'node:module';
import { ERR_NO_BOOT_DATA } from '../errors.ts';
import { serializeError, type ConcreteTransportName, type FromWorker, type ToWorker } from '../protocol/messages.ts';
import { exhaustive } from '../exhaustive.ts';
import { pipePathIn } from '../protocol/sessions.ts';
import { handoffWorker } from '../transports/handoff/worker.ts';
import { listenOnPipe, pipeWorker, stopListeningOnPipe } from '../transports/pipe/worker.ts';
import { reuseportWorker } from '../transports/reuseport/worker.ts';
import type { WorkerTransportFactory } from '../transports/worker-transport.ts';
import { isBootData, markModuleLoaded, setWorkerContext } from './context.ts';
import { startHeartbeat } from './heartbeat.ts';
import { interceptListen } from './listen.ts';
import { provideProcessApis } from './process-apis.ts';
import { settlePublicListen } from './public-listen.ts';
import { markServingOnceBound } from './server-takeover.ts';
import { agentFor, currentAgent } from './service-agent.ts';
import { clientRouter, setMembers } from './client-routing.ts';
import { configureSessions } from './sessions.ts';
import { sharedServers } from './shared-servers.ts';
import { adaptSocketio } from './socketio-default.ts';
import { deliverSignal, exitWorker, finishWorker, keepSelfSignalsInWorker } from './signals.ts';
import { reportClientAddresses } from './socket-addresses.ts';
import { relayWarnings } from './warnings.ts';

const workerTransports: Record<ConcreteTransportName, WorkerTransportFactory> = {
  handoff: handoffWorker,
  pipe: pipeWorker,
  reuseport: reuseportWorker,
};

const context = workerThreads.workerData;
if (!isBootData(context)) throw new ERR_NO_BOOT_DATA();

const { port } = context;
const post = (message: FromWorker): void => port.postMessage(message);

setWorkerContext(context);
startHeartbeat(context.heartbeat);
(workerThreads as { workerData: unknown }).workerData = context.userWorkerData;
syncBuiltinESMExports();
reportClientAddresses();

const sink = () => currentAgent()!;
configureSessions({
  self: context.id,
  pipeDir: context.pipeDir,
  token: context.token,
  // Unreachable, its sessions' requests elsewhere get Engine.IO's 400, and their clients start anew.
  listen: () => void listenOnPipe(pipePathIn(context.pipeDir, context.id), context.token, sink).catch(() => {}),
  byClient:
    context.routeByClient && context.trustProxy
      ? clientRouter(context.trustProxy, context.routeByClient.ipv6PrefixBits)
      : undefined,
  // The client's address, as reportClientAddresses() makes every socket tell it.
  issued: context.reportSessions
    ? (req) => {
        const address = req.socket.remoteAddress;
        if (address) post({ type: 'session-issued', address });
      }
    : undefined,
});
const transport = workerTransports[context.transport](context, sink);
const shared = sharedServers({
  post,
  takePipedConnections: (pipePath) => listenOnPipe(pipePath, context.token, sink),
})!;

// The proxied server first: its agent tells the keep-alive connections of every server to close.
const stop = (): void => {
  const agent = currentAgent();
  if (agent) agent.server.close();
  for (const server of shared.servers()) server.close();
  if (!agent) post({ type: 'drained' });
};
keepSelfSignalsInWorker(stop);
provideProcessApis(port);
relayWarnings(post);

// An app's own drain on the signal (Apollo Server's, stoppable's, http-terminator's) ends at once every
// connection not handling a request, one whose next request is on its way included, and that
// request's client gets no answer. So the agent first stops taking connections and closes its
// keep-alive ones after their answers; the app hears the signal once they have closed, or after
// SIGNAL_DELAY_MS for connections that stay open (a WebSocket the app closes on the signal). Only
// then are the servers closed: an app that closes its server in its listener closes it first, and
// its close() callback gets no error, as alone.
const SIGNAL_DELAY_MS = 1000;
const retire = (signal: NodeJS.Signals | undefined): void => {
  const agent = currentAgent();
  if (!signal || !agent || agent.connections === 0) {
    if (signal) deliverSignal(signal);
    stop();
    return;
  }
  agent.stop();
  const deliver = (): void => {
    clearTimeout(timer);
    agent.off('drained', deliver);
    deliverSignal(signal);
    stop();
  };
  const timer = setTimeout(deliver, SIGNAL_DELAY_MS).unref();
  agent.once('drained', deliver);
};

// Once the worker has finished its connections, socketnaut's own handles keep it alive no longer: the
// channel to the proxy still carries messages while anything else keeps the thread going.
const release = (): void => {
  port.unref();
  stopListeningOnPipe();
};

// Every message from the proxy comes through here.
port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'connection':
    case 'lend-listener':
    case 'return-listeners':
    case 'close-listeners':
    case 'peer':
    case 'peer-gone':
      transport.receive(message);
      break;
    case 'listen-result':
      void shared.settle(message);
      break;
    case 'members':
      setMembers(message.members);
      break;
    case 'public-address':
      settlePublicListen(message);
      break;
    case 'retire':
      retire(message.signal);
      break;
    case 'may-end':
      finishWorker(release);
      break;
    case 'end':
      release();
      post({ type: 'pending', resources: process.getActiveResourcesInfo() });
      exitWorker();
      break;
    default:
      exhaustive(message);
  }
});

// Under the launcher, which tells the app the public port in PORT, the proxied server is the one that
// listens there (or names no port); a listen on any other port, 0 included, or on a Unix socket, is
// one of the app's other servers even when it comes first. Otherwise the first server to listen is
// the proxied one.
const launcherPort = Number(process.env.PORT) || undefined;

try {
  await transport.start();
  interceptListen({
    claim: (server, port, namesPath) => {
      const agent = currentAgent();
      if (agent) return agent.server === server ? server : undefined;
      if (launcherPort !== undefined && (namesPath || (port !== undefined && port !== launcherPort))) return undefined;
      return agentFor(server, false).server;
    },
    publicPort: launcherPort,
    shared,
  });
  adaptSocketio(context.socketioAdapter);
  await import(context.moduleURL);
} catch (err) {
  post({ type: 'bootstrap-error', error: serializeError(err) });
  throw err;
}

// Also makes ready a module that created its agent but never called listen().
markModuleLoaded();
const agent = currentAgent();
if (agent) markServingOnceBound(agent, context.publicAddress);
