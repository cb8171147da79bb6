// Sends one request of an Engine.IO session to the worker that owns it, over that worker's Unix
// socket, opened as the pipe transport opens one (its preamble names the client), so that the owner's
// server sees the client as if it had come straight there.
import type http from 'node:http';
import net from 'node:net';
import { loadHttp } from '../builtins.ts';
import { addressInfoOf, storedAddressInfo } from '../protocol/address-info.ts';
import { BETWEEN_WORKERS, encodePreamble } from '../transports/pipe/preamble.ts';

const PUBLIC_PORT = 0;

// Each hop sets these for itself.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer']);

/**
 * Connects to the owner at `pipePath`, then calls `connected` with the socket; or `unreachable` when
 * the owner is gone, so that the request is served here and Engine.IO answers for the unknown session.
 */
function connectToOwner(
  pipePath: string,
  token: string,
  client: net.Socket,
  connected: (upstream: net.Socket) => void,
  unreachable: () => void,
): void {
  const upstream = net.connect(pipePath);
  upstream.once('error', unreachable);
  upstream.once('connect', () => {
    upstream.off('error', unreachable);
    const info = storedAddressInfo(client) ?? addressInfoOf(client);
    upstream.write(encodePreamble(token, info, info?.remote.address ?? '-', BETWEEN_WORKERS, PUBLIC_PORT));
    connected(upstream);
  });
}

function endToEnd(rawHeaders: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (!HOP_BY_HOP.has(rawHeaders[i]!.toLowerCase())) kept.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  return kept;
}

/** A long-polling request (or any other): its body goes to the owner, the owner's response to the client. */
export function forwardRequest(
  pipePath: string,
  token: string,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  unreachable: () => void,
): void {
  connectToOwner(
    pipePath,
    token,
    req.socket,
    (upstream) => {
      const forwarded = loadHttp().request({
        createConnection: () => upstream,
        method: req.method,
        path: req.url,
        headers: endToEnd(req.rawHeaders),
        setHost: false,
      });
      forwarded.on('response', (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, endToEnd(answer.rawHeaders));
        answer.pipe(res);
      });
      // The owner died mid-request: the client's Engine.IO sees a failed request and reconnects.
      forwarded.on('error', () => res.destroy());
      res.on('close', () => forwarded.destroy());
      req.pipe(forwarded);
    },
    unreachable,
  );
}

/** The upgrade to WebSocket: the request goes to the owner as it came, then the bytes both ways. */
export function forwardUpgrade(
  pipePath: string,
  token: string,
  req: http.IncomingMessage,
  socket: net.Socket,
  head: Buffer,
  unreachable: () => void,
): void {
  connectToOwner(
    pipePath,
    token,
    socket,
    (upstream) => {
      const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.on('error', () => socket.destroy());
      socket.on('error', () => upstream.destroy());
      upstream.on('close', () => socket.destroy());
      socket.on('close', () => upstream.destroy());
      upstream.pipe(socket);
      socket.pipe(upstream);
    },
    unreachable,
  );
}
