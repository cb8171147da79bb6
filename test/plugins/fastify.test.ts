import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import Fastify, { type FastifyInstance } from 'fastify';
import socketnaut from 'socketnaut/fastify';
import { fixture, requestJSON, startProxy, transports } from '../helpers.ts';

function httpsGet(port: number, localAddress: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, localAddress, rejectUnauthorized: false, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

interface Reply {
  hello: string;
  info: { remote: { address: string; port: number }; local: { address: string; port: number } };
}

for (const transport of transports) {
  t.test(`${transport}: a Fastify app in the workers sees the proxy's client`, async (t) => {
    const { port } = await startProxy(t, { workerURL: fixture('fastify-app.js'), workerCount: 2, transport });
    for (const localAddress of ['127.0.0.9', '127.0.0.10']) {
      const reply = await requestJSON<Reply>(port, { localAddress });
      t.equal(reply.hello, localAddress, 'clientAddress');
      t.equal(reply.info.remote.address, localAddress, 'proxySocketAddressInfo.remote');
      t.equal(reply.info.local.port, port, 'proxySocketAddressInfo.local is the public port');
    }
    const injected = await requestJSON<Reply>(port, { path: '/inject', localAddress: '127.0.0.9' });
    t.equal(injected.hello, '127.0.0.66', 'inject() in a worker gets its own address, not the proxy client');
  });
}

for (const transport of transports) {
  t.test(`${transport}: a Fastify app that ends TLS itself sees the proxy's client`, async (t) => {
    const { port } = await startProxy(t, { workerURL: fixture('fastify-https-app.js'), workerCount: 1, transport });
    const reply = JSON.parse(await httpsGet(port, '127.0.0.9')) as Reply & { encrypted: boolean };
    t.equal(reply.encrypted, true);
    t.equal(reply.hello, '127.0.0.9');
    t.equal(reply.info.remote.address, '127.0.0.9');
    t.equal(reply.info.local.port, port);
  });
}

t.test('the same app module outside a worker reads its own sockets', async (t) => {
  const saved = process.env.PORT;
  process.env.PORT = '0';
  t.teardown(() => {
    if (saved === undefined) delete process.env.PORT;
    else process.env.PORT = saved;
  });
  const { app } = (await import(fixture('fastify-app.js').href)) as { app: FastifyInstance };
  t.teardown(() => app.close());
  const port = (app.server.address() as net.AddressInfo).port;
  t.not(port, 0);
  const reply = await requestJSON<Reply>(port, { localAddress: '127.0.0.9' });
  t.equal(reply.hello, '127.0.0.9');
  t.equal(reply.info.remote.address, '127.0.0.9');
  t.equal(reply.info.local.port, port);
  const injected = await requestJSON<Reply>(port, { path: '/inject' });
  t.equal(injected.hello, '127.0.0.66');
});

t.test('the decorations work in hooks added before the plugin', async (t) => {
  const app = Fastify();
  t.teardown(() => app.close());
  let seen: string | undefined;
  app.addHook('onRequest', async (req) => {
    seen = req.clientAddress;
  });
  await app.register(socketnaut);
  app.get('/', (req) => ({ hello: req.clientAddress }));
  const reply = await app.inject({ url: '/', remoteAddress: '127.0.0.7' });
  t.same(reply.json(), { hello: '127.0.0.7' });
  t.equal(seen, '127.0.0.7');
});

t.test('a keep-alive connection keeps one address info object', async (t) => {
  const app = Fastify();
  t.teardown(() => app.close());
  await app.register(socketnaut);
  const infos: object[] = [];
  app.get('/', (req) => {
    infos.push(req.proxySocketAddressInfo);
    return { ok: true };
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as net.AddressInfo).port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  await requestJSON(port, { agent });
  await requestJSON(port, { agent });
  t.equal(infos.length, 2);
  t.equal(infos[0], infos[1]);
});

t.test('registering twice fails with a coded error', async (t) => {
  const app = Fastify();
  t.teardown(() => app.close());
  await app.register(socketnaut);
  await t.rejects(async () => app.register(socketnaut), { code: 'SOCKETNAUT_ERR_PLUGIN_REGISTERED_TWICE' });
});

t.test('registering again in a child context fails with a coded error', async (t) => {
  const app = Fastify();
  t.teardown(() => app.close());
  await app.register(socketnaut);
  await t.rejects(
    async () =>
      app.register(async (child) => {
        await child.register(socketnaut);
      }),
    { code: 'SOCKETNAUT_ERR_PLUGIN_REGISTERED_TWICE' },
  );
});

t.test('an unsupported Fastify version is refused', async (t) => {
  const app = Fastify();
  t.teardown(() => app.close());
  Object.defineProperty(app, 'version', { configurable: true, get: () => '4.29.1' });
  await t.rejects(async () => app.register(socketnaut), { code: 'FST_ERR_PLUGIN_VERSION_MISMATCH' });
});

t.test('the plugin called by something other than Fastify fails with a coded error', async (t) => {
  const asMiddleware = socketnaut as unknown as (...args: unknown[]) => void;
  t.throws(() => asMiddleware({ socket: {} }, { setHeader() {} }, () => {}), {
    code: 'SOCKETNAUT_ERR_UNSUPPORTED_FRAMEWORK',
    name: 'TypeError [SOCKETNAUT_ERR_UNSUPPORTED_FRAMEWORK]',
  });
});

t.test('registering claims the app for the proxy before any other server listens', async (t) => {
  const { port } = await startProxy(t, { workerURL: fixture('fastify-claims-early.js'), workerCount: 1 });
  const reply = await requestJSON<{ hello: string; server: string }>(port, { localAddress: '127.0.0.9' });
  t.same(reply, { hello: '127.0.0.9', server: 'fastify' });
});

t.test('an app on a Unix socket of its own is served, with no client address', async (t) => {
  const app = Fastify();
  t.teardown(() => app.close());
  await app.register(socketnaut);
  app.get('/', (req) => ({ hello: req.clientAddress ?? null, info: req.proxySocketAddressInfo ?? null }));
  const socketPath = path.join(os.tmpdir(), `socketnaut-fastify-${process.pid}.sock`);
  await app.listen({ path: socketPath });
  t.same(await requestJSON(0, { socketPath }), { hello: null, info: null });
});

t.test('registering in a worker that already serves another server fails with a coded error', async (t) => {
  const { port } = await startProxy(t, { workerURL: fixture('fastify-after-other-server.js'), workerCount: 1 });
  t.same(await requestJSON(port), { failure: 'SOCKETNAUT_ERR_AGENT_EXISTS' });
});
