// A worker's listens on the public port. As node:cluster's primary binds for its workers, the main
// thread binds the public port where the app asks (under the launcher, the first time it is asked;
// otherwise its owner bound it already) and answers with the address bound, or with why it could not.
// Types only: importing node:http or node:tls would load them into every worker (see ../builtins.ts).
import type http from 'node:http';
import type http2 from 'node:http2';
import type net from 'node:net';
import type tls from 'node:tls';
import type { FromWorker, PublicListen, ToWorker } from '../protocol/messages.ts';
import type { ServerAddress } from '../protocol/seeming-listen.ts';
import { getWorkerContext } from './context.ts';
import { parseListenArgs } from './listen-args.ts';
import { listenError } from './shared-servers.ts';

type PublicAddress = Extract<ToWorker, { type: 'public-address' }>;
type Answer = (address: ServerAddress | null, failure: Error | undefined) => void;

// Kept on globalThis, as the worker context is: the bootstrap's copy of socketnaut settles what the
// app's own copy asked.
const kAnswers = Symbol.for('socketnaut.publicListens');
type Global = { [kAnswers]?: { last: number; waiting: Map<number, Answer> } };

function answers(): { last: number; waiting: Map<number, Answer> } {
  const global = globalThis as Global;
  global[kAnswers] ??= { last: 0, waiting: new Map() };
  return global[kAnswers];
}

/** Asks the main thread for the public port where `server`'s listen() `args` ask; `answer` hears the outcome. */
export function listenPublic(server: net.Server, args: unknown[], answer: Answer): void {
  const state = answers();
  const request = ++state.last;
  state.waiting.set(request, answer);
  const asked = parseListenArgs(args);
  const listen: PublicListen = {
    host: asked?.host,
    ipv6Only: asked?.ipv6Only,
    backlog: asked?.backlog,
    scheme: schemeOf(server),
  };
  getWorkerContext()!.port.postMessage({ type: 'public-listen', request, listen } satisfies FromWorker);
}

export function settlePublicListen(message: PublicAddress): void {
  const { waiting } = answers();
  const answer = waiting.get(message.request);
  waiting.delete(message.request);
  answer?.(message.address, message.failure && listenError(message.failure));
}

/** 'http' or 'https' for a server that serves HTTP requests; undefined for any other (raw TCP, gRPC). */
function schemeOf(server: net.Server): PublicListen['scheme'] {
  const http1 = typeof (server as Partial<http.Server>).headersTimeout === 'number';
  // An HTTP/2 server with only 'stream' listeners is most often gRPC's.
  const http2 =
    typeof (server as Partial<http2.Http2Server>).updateSettings === 'function' && server.listenerCount('request') > 0;
  if (!http1 && !http2) return undefined;
  return typeof (server as Partial<tls.Server>).setTicketKeys === 'function' ? 'https' : 'http';
}
