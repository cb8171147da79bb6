// Engine.IO sessions across the workers: a session id names the worker that owns the session, and a
// request of a session that reaches another worker (a new connection, or a keep-alive one that carries
// several clients' requests) is sent on to its owner. The main thread reads nothing for this.
import type http from 'node:http';
import type net from 'node:net';
import { ownerOfSession, pipePathIn, sessionIdFor, sessionOf } from '../protocol/sessions.ts';
import { forwardRequest, forwardUpgrade } from './session-forward.ts';

export interface SessionSettings {
  /** This worker's id, which its session ids carry. */
  self: number;
  pipeDir: string;
  token: string;
  /** Starts taking connections on this worker's Unix socket, where the others send its sessions' requests. */
  listen: () => void;
  /**
   * The worker a request that names no session belongs to, when one does (ip-hash behind a trusted
   * proxy, see client-routing.ts). Given, requests are routed from the start.
   */
  byClient?: (req: http.IncomingMessage) => number | undefined;
  /** This worker issued a session in answer to `req`. */
  issued?: (req: http.IncomingMessage) => void;
}

let settings: SessionSettings | undefined;
let active = false;
const routed = new WeakSet<net.Server>();
/** Connections another worker opened to send a request here: it was routed once already. */
const fromWorkers = new WeakSet<object>();
/** The server whose requests are routed once a session exists: the agent's. */
let candidate: net.Server | undefined;

/** The bootstrap tells how; routing starts with the first session this worker issues. */
export function configureSessions(value: SessionSettings): void {
  settings = value;
}

/** The agent's server: its requests are routed by session once there are sessions. */
export function routeSessionsOf(server: net.Server): void {
  candidate = server;
  if (active) route(server);
  else if (settings?.byClient) routeSessions();
}

/** Marks a connection another worker opened: its requests are served here, not routed by client again. */
export function cameFromWorker(socket: net.Socket): void {
  fromWorkers.add(socket);
}

/**
 * The app serves Engine.IO sessions (it loaded socket.io): from now on this worker takes its sessions'
 * requests from the others, and sends them theirs, even before it has a session of its own.
 */
export function routeSessions(): void {
  if (!settings || active) return;
  active = true;
  settings.listen();
  if (candidate) route(candidate);
}

/**
 * A new Engine.IO session id for the handshake `req` (from `base`, if given) naming this worker;
 * undefined outside a socketnaut worker.
 */
export function issueSessionId(req: unknown, base?: string): string | undefined {
  if (!settings) return undefined;
  routeSessions();
  if ((req as Partial<http.IncomingMessage> | undefined)?.socket) settings.issued?.(req as http.IncomingMessage);
  return sessionIdFor(settings.self, base);
}

/** The worker that owns the session `req` names, when that is another worker. */
function elsewhere(req: http.IncomingMessage): number | undefined {
  const sid = sessionOf(req.url);
  const { self, byClient } = settings!;
  const owner =
    sid !== undefined ? ownerOfSession(sid) : byClient && !routedOnce(req.socket) ? byClient(req) : undefined;
  return owner === self ? undefined : owner;
}

// Another worker's view of the members may differ for a moment: a request it sent here stays here.
function routedOnce(socket: net.Socket): boolean {
  return fromWorkers.has(socket) || fromWorkers.has((socket as { _parent?: object })._parent ?? socket);
}

function route(server: net.Server): void {
  if (routed.has(server)) return;
  routed.add(server);
  const { pipeDir, token } = settings!;
  const emit = server.emit as (this: net.Server, event: string | symbol, ...args: unknown[]) => boolean;
  server.emit = function routeBySession(this: net.Server, event: string | symbol, ...args: unknown[]): boolean {
    if (event !== 'request' && event !== 'upgrade') return emit.call(this, event, ...args);
    const owner = elsewhere(args[0] as http.IncomingMessage);
    if (owner === undefined) return emit.call(this, event, ...args);
    const here = (): void => void emit.call(this, event, ...args);
    const pipePath = pipePathIn(pipeDir, owner);
    const [req, second, head] = args as [http.IncomingMessage, unknown, Buffer];
    if (event === 'request') forwardRequest(pipePath, token, req, second as http.ServerResponse, here);
    else forwardUpgrade(pipePath, token, req, second as net.Socket, head, here);
    return true;
  } as typeof server.emit;
}
