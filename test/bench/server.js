// One benchmarked server, as its own process: node server.js <config> <protocol> <port> <workers>
// where <config> is plain, cluster, threads-reuseport, or a socketnaut transport (handoff, pipe,
// reuseport) optionally with a balancer (handoff/least-loaded), and <protocol> is http, https, raw
// (see RAW_REPLY) or http-esm (http, with node:http loaded by an ESM import). Prints "READY" once it
// serves. A socketnaut server prints "CPU <µs>", its main thread's CPU time so far, on SIGUSR2.
import { createRequire } from 'node:module';
import net from 'node:net';
import { isMainThread, Worker, workerData } from 'node:worker_threads';
import { handle } from './handler.js';

const [config, protocol, portText, workersText] = process.argv.slice(-4);
const port = Number(portText);
const workers = Number(workersText);

// Loaded as require() would: an ESM import of node:http loads undici in every thread, 5.5 MB each,
// and one of node:fs loads fs/promises (see the README's Memory section). http-esm measures the first.
const require = createRequire(import.meta.url);
const fs = require('node:fs');
const http = protocol === 'http-esm' ? (await import('node:http')).default : require('node:http');
const https = protocol === 'https' ? require('node:https') : undefined;
const tlsOptions = https && {
  key: fs.readFileSync(new URL('../fixtures/tls/key.pem', import.meta.url)),
  cert: fs.readFileSync(new URL('../fixtures/tls/cert.pem', import.meta.url)),
};

// For the dispatch-rate measurement: a worker that answers without parsing, so the main thread's
// accept-and-dispatch loop is what limits the rate.
const RAW_REPLY = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok';

function appServer() {
  return https ? https.createServer(tlsOptions, handle) : http.createServer(handle);
}

if (!isMainThread && workerData === 'threads-reuseport') {
  // The design of Platformatic Watt and `deno serve --parallel`: every thread listens on the port itself.
  appServer().listen({ port, host: '127.0.0.1', reusePort: true });
} else if (!isMainThread) {
  // A socketnaut worker: listen() is taken over by the proxy.
  if (protocol === 'raw')
    net
      .createServer((socket) =>
        socket
          .on('error', () => {})
          .resume()
          .end(RAW_REPLY),
      )
      .listen(port);
  else appServer().listen(port, '127.0.0.1');
} else if (config === 'plain') {
  appServer().listen(port, '127.0.0.1', () => console.log('READY'));
} else if (config === 'cluster') {
  // Imported here only: the per-worker RSS the benchmark reports is for an app that does not load it.
  const { default: cluster } = await import('node:cluster');
  if (cluster.isPrimary) {
    let online = 0;
    for (let i = 0; i < workers; i++) cluster.fork();
    cluster.on('listening', () => {
      if (++online === workers) console.log('READY');
    });
  } else {
    appServer().listen(port, '127.0.0.1');
  }
} else if (config === 'threads-reuseport') {
  let online = 0;
  for (let i = 0; i < workers; i++) {
    const worker = new Worker(new URL(import.meta.url), { argv: process.argv.slice(-4), workerData: config });
    // The thread's server is listening once its first turn of the loop is done.
    worker.once('online', () => setTimeout(() => ++online === workers && console.log('READY'), 200));
  }
} else {
  const started = performance.now();
  const { createServiceProxy } = await import('socketnaut');
  const [transport, balance] = config.split('/');
  const server = net.createServer().listen({ port, host: '127.0.0.1', reusePort: transport === 'reuseport' });
  process.on('SIGUSR2', () => {
    const { user, system } = process.threadCpuUsage();
    console.log(`CPU ${user + system}`);
  });
  const proxy = createServiceProxy({
    server,
    workerURL: new URL(import.meta.url),
    workerCount: workers,
    transport,
    balance,
    workerOptions: { argv: process.argv.slice(-4) },
  });
  proxy.on('ready', () => console.log(`READY ${(performance.now() - started).toFixed(1)}`));
}
