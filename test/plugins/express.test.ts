import { once } from 'node:events';
import type http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import express from 'express';
import Koa from 'koa';
import socketnaut from 'socketnaut/express';
import { fixture, request, requestJSON, startProxy, transports } from '../helpers.ts';

interface Reply {
  hello: string;
  info: { remote: { address: string; port: number }; local: { address: string; port: number } };
}

async function listen(t: Test, server: http.Server): Promise<number> {
  if (!server.listening) await once(server, 'listening');
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return (server.address() as net.AddressInfo).port;
}

/** An Express app on a port of its own, with the errors that reach its error handler collected. */
async function startExpress(t: Test, app: express.Express): Promise<{ port: number; errors: Error[] }> {
  const errors: Error[] = [];
  app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    errors.push(err);
    res.status(500).end();
  });
  const port = await listen(t, app.listen(0, '127.0.0.1'));
  return { port, errors };
}

for (const transport of transports) {
  t.test(`${transport}: an Express app in the workers sees the proxy's client`, async (t) => {
    const { port } = await startProxy(t, { workerURL: fixture('express-app.js'), workerCount: 2, transport });
    for (const localAddress of ['127.0.0.9', '127.0.0.10']) {
      const reply = await requestJSON<Reply>(port, { localAddress });
      t.equal(reply.hello, localAddress, 'req.clientAddress');
      t.equal(reply.info.remote.address, localAddress, 'req.proxySocketAddressInfo.remote');
      t.equal(reply.info.local.port, port, 'proxySocketAddressInfo.local is the public port');
    }
  });
}

t.test('the same app module outside a worker reads its own sockets', async (t) => {
  const saved = process.env.PORT;
  process.env.PORT = '0';
  t.teardown(() => {
    if (saved === undefined) delete process.env.PORT;
    else process.env.PORT = saved;
  });
  const { server } = (await import(fixture('express-app.js').href)) as { server: http.Server };
  const port = await listen(t, server);
  const reply = await requestJSON<Reply>(port, { localAddress: '127.0.0.9' });
  t.equal(reply.hello, '127.0.0.9');
  t.equal(reply.info.remote.address, '127.0.0.9');
  t.equal(reply.info.local.port, port);
});

t.test('using the middleware twice fails with a coded error', async (t) => {
  const app = express();
  app.use(socketnaut());
  app.use(socketnaut());
  let reached = false;
  app.get('/', (_req, res) => {
    reached = true;
    res.send('ok');
  });
  const { port, errors } = await startExpress(t, app);
  const reply = await request(port);
  t.equal(reply.status, 500);
  t.equal(reached, false, 'the handler did not run');
  t.equal(errors.length, 1);
  t.match(errors[0], { code: 'SOCKETNAUT_ERR_PLUGIN_REGISTERED_TWICE' });
});

t.test('using the middleware in an app and in a sub-app mounted in it fails with a coded error', async (t) => {
  const app = express();
  const api = express();
  api.use(socketnaut());
  api.get('/', (_req, res) => {
    res.send('ok');
  });
  app.use(socketnaut());
  app.use('/api', api);
  app.get('/', (req, res) => {
    res.send(req.clientAddress);
  });
  const { port, errors } = await startExpress(t, app);
  const outer = await request(port, { localAddress: '127.0.0.9' });
  t.equal(outer.text, '127.0.0.9', 'a request that passes the middleware once is served');
  const reply = await request(port, { path: '/api/' });
  t.equal(reply.status, 500);
  t.equal(errors.length, 1);
  t.match(errors[0], { code: 'SOCKETNAUT_ERR_PLUGIN_REGISTERED_TWICE' });
});

t.test('the factory used as middleware fails with a coded error, not a hung request', async (t) => {
  const app = express();
  app.use(socketnaut as unknown as express.RequestHandler);
  app.get('/', (_req, res) => {
    res.send('ok');
  });
  const { port, errors } = await startExpress(t, app);
  const reply = await request(port);
  t.equal(reply.status, 500);
  t.equal(errors.length, 1);
  t.match(errors[0], { code: 'SOCKETNAUT_ERR_UNSUPPORTED_FRAMEWORK' });
});

t.test('the Express middleware in a Koa app fails with a coded error', async (t) => {
  const app = new Koa();
  app.use(socketnaut() as unknown as Koa.Middleware);
  app.use((ctx) => {
    ctx.body = 'ok';
  });
  const errors: Error[] = [];
  app.on('error', (err: Error) => errors.push(err));
  const port = await listen(t, app.listen(0, '127.0.0.1'));
  const reply = await request(port);
  t.equal(reply.status, 500);
  t.equal(errors.length, 1);
  t.match(errors[0], { code: 'SOCKETNAUT_ERR_UNSUPPORTED_FRAMEWORK' });
});

t.test('an app on a Unix socket of its own is served, with no client address', async (t) => {
  const app = express();
  app.use(socketnaut());
  app.get('/', (req, res) => {
    res.json({ hello: req.clientAddress ?? null, info: req.proxySocketAddressInfo ?? null });
  });
  const socketPath = path.join(os.tmpdir(), `socketnaut-express-${process.pid}.sock`);
  const server = app.listen(socketPath);
  await listen(t, server);
  t.same(await requestJSON(0, { socketPath }), { hello: null, info: null });
});
