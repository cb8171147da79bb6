import { once } from 'node:events';
import type http from 'node:http';
import { loadHttp } from '../builtins.ts';
import type { ServiceProxy } from './service-proxy.ts';

export interface HealthServer {
  server: http.Server;
  /** Where the probes are: `${url}/ready` and `${url}/live`. */
  url: string;
  close(): Promise<void>;
}

// The probe server runs on the main thread, beside the proxy: whatever its clients do, it must cost
// next to nothing. Slow or idle clients are cut, and only a few may connect at once.
const SERVER_OPTIONS: http.ServerOptions = {
  headersTimeout: 2_000,
  requestTimeout: 5_000,
  keepAliveTimeout: 2_000,
  connectionsCheckingInterval: 500,
  maxHeaderSize: 4_096,
};
const MAX_CONNECTIONS = 32;
const SOCKET_TIMEOUT_MS = 5_000;

/**
 * Answers GET or HEAD `/ready` and `/live` with the proxy's health (see ServiceProxy.health()), 200
 * or 503, and the report as JSON. Returns false for any other path, leaving the request to the caller.
 */
export function answerProbe(proxy: ServiceProxy, req: http.IncomingMessage, res: http.ServerResponse): boolean {
  const path = req.url?.split('?')[0];
  if (path !== '/ready' && path !== '/live') return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return true;
  }
  const report = proxy.health();
  const ok = path === '/ready' ? report.ready : report.live;
  const body = `${JSON.stringify(report)}\n`;
  res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}

/**
 * Serves the probes an orchestrator asks, `/ready` and `/live`, on a port of their own; any other
 * path is 404. `host` as for listen(): all interfaces when undefined.
 */
export async function serveHealth(proxy: ServiceProxy, port: number, host?: string): Promise<HealthServer> {
  const server = loadHttp().createServer(SERVER_OPTIONS, (req, res) => {
    if (!answerProbe(proxy, req, res)) res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: the probes are /ready and /live\n');
  });
  server.maxConnections = MAX_CONNECTIONS;
  server.setTimeout(SOCKET_TIMEOUT_MS);
  server.listen(port, host);
  await once(server, 'listening');
  const address = server.address() as { port: number };
  return {
    server,
    url: `http://${host && host.includes(':') ? `[${host}]` : (host ?? 'localhost')}:${address.port}`,
    close: async () => {
      server.close();
      server.closeAllConnections();
      await once(server, 'close');
    },
  };
}
