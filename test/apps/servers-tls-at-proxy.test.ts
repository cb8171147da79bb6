import crypto from 'node:crypto';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { TLSSocket } from 'node:tls';
import t from 'tap';
import { createServiceProxy } from 'socketnaut';
import { fixture, request, startProxy, tlsConnect, tlsFiles } from '../helpers.ts';

interface Info {
  threadId: number;
  sync?: { remote: { address: string; port: number }; local: { address: string; port: number } };
  requested: { remote: { address: string; port: number } };
}

interface HttpsReply {
  status: number;
  body: Buffer;
  localPort: number;
}

function httpsRequest(port: number, options: https.RequestOptions & { body?: Buffer } = {}): Promise<HttpsReply> {
  const { body, ...rest } = options;
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, agent: false, rejectUnauthorized: false, ...rest }, (res) => {
      const localPort = (res.socket as TLSSocket).localPort ?? 0;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), localPort }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const tlsServer = (): tls.Server => tls.createServer({ key: tlsFiles.key, cert: tlsFiles.cert });

t.test("transport 'auto' with a tls.Server chooses the pipe", async (t) => {
  const { proxy, port } = await startProxy(t, {
    server: tlsServer(),
    workerURL: fixture('http-server.js'),
    workerCount: 2,
    transport: 'auto',
  });
  t.equal(proxy.transport, 'pipe');

  const threads = new Set<number>();
  for (let i = 0; i < 6; i++) {
    const localAddress = `127.0.0.${30 + i}`;
    const reply = await httpsRequest(port, { localAddress, path: '/' });
    t.equal(reply.status, 200);
    const info = JSON.parse(reply.body.toString()) as Info;
    t.equal(info.sync?.remote.address, localAddress, "the worker saw the client's address");
    t.equal(info.sync?.remote.port, reply.localPort, "the worker saw the client's port");
    t.equal(info.sync?.local.port, port, "the worker saw the proxy's public port");
    t.equal(info.requested.remote.address, localAddress);
    threads.add(info.threadId);
  }
  t.equal(threads.size, 2, 'both workers served');
});

t.test("transport 'pipe' with a tls.Server serves HTTPS, bodies included", async (t) => {
  const { proxy, port } = await startProxy(t, {
    server: tlsServer(),
    workerURL: fixture('http-server.js'),
    workerCount: 1,
    transport: 'pipe',
  });
  t.equal(proxy.transport, 'pipe');
  const body = Buffer.alloc(200_000, 'socketnaut ');
  const reply = await httpsRequest(port, { method: 'POST', path: '/echo', body, localAddress: '127.0.0.40' });
  t.equal(reply.status, 200);
  t.ok(reply.body.equals(body), 'the echoed body matches');
  // Random bytes, far more than the socket buffers hold: a chunk lost, repeated or overwritten shows.
  const large = crypto.randomBytes(16 * 1024 * 1024);
  const echoed = await httpsRequest(port, { method: 'POST', path: '/echo', body: large, localAddress: '127.0.0.42' });
  t.ok(echoed.body.equals(large), 'a 16 MiB random body is echoed byte for byte');

  const info = JSON.parse((await httpsRequest(port, { localAddress: '127.0.0.41' })).body.toString()) as Info;
  t.equal(info.sync?.remote.address, '127.0.0.41');
});

t.test('a client that does not speak TLS never reaches a worker', async (t) => {
  const { proxy, port } = await startProxy(t, {
    server: tlsServer(),
    workerURL: fixture('http-server.js'),
    workerCount: 1,
  });
  await t.rejects(request(port, { localAddress: '127.0.0.42' }), 'a plain-text request fails');
  t.equal(proxy.agents[0]?.totalConnections, 0, 'no connection was dispatched to the worker');
  const info = JSON.parse((await httpsRequest(port, { localAddress: '127.0.0.43' })).body.toString()) as Info;
  t.equal(info.sync?.remote.address, '127.0.0.43', 'the proxy keeps serving TLS clients');
  t.equal(proxy.agents[0]?.totalConnections, 1);
});

t.test('a TLS client that half-closes still gets its reply', async (t) => {
  const { port } = await startProxy(t, { server: tlsServer(), workerURL: fixture('http-server.js'), workerCount: 1 });
  // tls.connect() takes net.connect()'s localAddress, which its type does not list.
  const options = { localAddress: '127.0.0.44', rejectUnauthorized: false };
  const socket = await tlsConnect(port, options);
  t.teardown(() => socket.destroy());
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    socket.once('end', resolve);
    socket.once('error', reject);
  });
  socket.end('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await ended;
  const text = Buffer.concat(chunks).toString();
  t.match(text, /^HTTP\/1\.1 200 /);
  const info = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Info;
  t.equal(info.sync?.remote.address, '127.0.0.44');
});

t.test("transport 'handoff' with a tls.Server throws at construction", async (t) => {
  const server = tlsServer();
  const err = (() => {
    try {
      const proxy = createServiceProxy({
        server,
        workerURL: fixture('http-server.js'),
        workerCount: 1,
        transport: 'handoff',
      });
      // Reached only when the constructor did not throw: stop what it started.
      t.teardown(() => proxy.shutdown({ timeout: 100 }));
      return undefined;
    } catch (err) {
      return err as NodeJS.ErrnoException;
    }
  })();
  t.ok(err instanceof TypeError, 'a TypeError');
  t.equal(err?.code, 'SOCKETNAUT_ERR_INVALID_OPTION');
  t.match(err?.message, /"transport"/);
  t.equal(server.listenerCount('secureConnection'), 0, 'the server was left untouched');
  t.equal(server.listenerCount('connection'), 1, "only the tls.Server's own connection listener");

  // A plain net.Server with 'handoff' is still fine: the check is about TLS.
  t.doesNotThrow(() => {
    const proxy = createServiceProxy({
      server: net.createServer(),
      workerURL: fixture('http-server.js'),
      workerCount: 1,
      transport: 'handoff',
    });
    proxy.on('error', () => {});
    t.teardown(() => proxy.shutdown({ timeout: 100 }));
  });
});
