import { once } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import { consoleHandler, createServiceProxy, Level } from 'socketnaut';

// Like the launcher: warnings and errors only, so the start-up line stands alone.
consoleHandler.setLevel(Level.WARN);

const host = process.env.HOST ?? '127.0.0.1';
const httpServer = net.createServer().listen(Number(process.env.HTTP_PORT ?? 8080), host);
const httpsServer = net.createServer().listen(Number(process.env.HTTPS_PORT ?? 8443), host);
await Promise.all([once(httpServer, 'listening'), once(httpsServer, 'listening')]);
// The actual ports, so that port 0 (any free port) works too.
const httpPort = httpServer.address().port;
const httpsPort = httpsServer.address().port;

// Both proxies hand the TCP sockets over, so TLS is done in the HTTPS workers, on every core.
// A redirect costs next to nothing: one worker is plenty for it.
const redirects = createServiceProxy({
  server: httpServer,
  workerURL: new URL('./http-redirect.js', import.meta.url),
  workerCount: 1,
  workerOptions: { workerData: { host, httpsPort } },
});
const pages = createServiceProxy({
  server: httpsServer,
  workerURL: new URL('./https-server.js', import.meta.url),
  workerCount: os.availableParallelism(),
});
await Promise.all([once(redirects, 'ready'), once(pages, 'ready')]);

const origin = (scheme, port) => `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
console.log(`https-redirect: ${origin('http', httpPort)} -> ${origin('https', httpsPort)}`);

async function stop() {
  await Promise.all([redirects.shutdown({ timeout: 10_000 }), pages.shutdown({ timeout: 10_000 })]);
}
// `once`: a second signal gets Node's default handling and ends the process at once.
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
