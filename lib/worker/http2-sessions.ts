// An HTTP/2 client sends every request on one connection for as long as it stays open, so a stopping
// worker would keep serving it until the client left. At a stop each session is sent GOAWAY (its
// streams finish, then it closes) and its client opens a new connection, which another worker takes,
// as Node 24's own Http2Server.close() does for a server that really listens.
import type net from 'node:net';

interface Session {
  close(): void;
  once(event: 'close', listener: () => void): unknown;
}

const sessionsOf = new WeakMap<net.Server, Set<Session>>();

function isHttp2Server(server: net.Server): boolean {
  const name = server.constructor?.name;
  return name === 'Http2Server' || name === 'Http2SecureServer';
}

/** Keeps count of `server`'s sessions, when it is an HTTP/2 server. */
export function followHttp2Sessions(server: net.Server): void {
  if (!isHttp2Server(server)) return;
  const sessions = new Set<Session>();
  sessionsOf.set(server, sessions);
  server.on('session', (session: Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
}

/** Sends GOAWAY on each of `server`'s open sessions. */
export function closeHttp2Sessions(server: net.Server): void {
  for (const session of sessionsOf.get(server) ?? []) session.close();
}
