import net from 'node:net';
import { once } from 'node:events';
import t from 'tap';
import { connectOutcome, fixture, freePort, requestJSON, startProxy } from '../helpers.ts';

t.test("a second server on the proxied server's port opens no port either", async (t) => {
  const port = await freePort();
  const { port: publicPort } = await startProxy(t, {
    workerURL: fixture('same-port-servers.js'),
    workerCount: 1,
    workerOptions: { env: { ...process.env, TEST_PORT: String(port) } },
  });
  t.same(await requestJSON(publicPort), { secondListening: true }, 'the second server believes it listens');
  t.equal(await connectOutcome(port, '127.0.0.1'), 'ECONNREFUSED', 'no port for the proxied server');
  t.equal(await connectOutcome(port, '127.0.0.2'), 'ECONNREFUSED', 'no port for the second server');
});

t.test('a module that throws after listen() has failed to start: reported as a bootstrap error', async (t) => {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { createServiceProxy } = await import('socketnaut');
  const proxy = createServiceProxy({ server, workerURL: fixture('throws-after-listen.js'), workerCount: 1 });
  t.teardown(() => proxy.shutdown({ timeout: 1000 }));
  let ready = false;
  proxy.once('ready', () => (ready = true));
  const [err] = (await once(proxy, 'error')) as [Error & { code: string; cause?: { message: string } }];
  t.equal(err.code, 'SOCKETNAUT_ERR_WORKER_BOOTSTRAP');
  t.match(err.cause?.message, /thrown after listen on purpose/);
  t.equal(ready, false, "the proxy never reported 'ready'");
});
