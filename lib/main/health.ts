import type http from 'node:http';
import type { ServiceProxy } from './service-proxy.ts';
import { listenSideServer, type SideServer } from './side-server.ts';

export interface HealthServer extends SideServer {
  /** Where the probes are: `${url}/ready` and `${url}/live`. */
  url: string;
}

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
  res.writeHead(ok ? 200 : 503, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}

/**
 * Serves the probes an orchestrator asks, `/ready` and `/live`, on a port of their own; any other
 * path is 404. `host` as for listen(): all interfaces when undefined.
 */
export function serveHealth(proxy: ServiceProxy, port: number, host?: string): Promise<HealthServer> {
  return listenSideServer(
    (req, res) => {
      if (!answerProbe(proxy, req, res))
        res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: the probes are /ready and /live\n');
    },
    port,
    host,
  );
}
