// The usages the reference's README and examples show, in this project's words: the proxy's server
// still binding when createServiceProxy() runs, and the agent made before the app's listen() on port
// 0, for node:http, Fastify, Koa and Express. The address a server reports in its 'listening' event
// is what frameworks log (Fastify reads it there, and throws if it is null).
import { once } from 'node:events';
import net from 'node:net';
import t from 'tap';
import { createServiceProxy, type ServiceProxy } from 'socketnaut';
import { fixture, requestJSON, startProxy } from '../helpers.ts';

const apps = {
  'node:http': 'agent-first-http.js',
  fastify: 'agent-first-fastify.js',
  koa: 'agent-first-koa.js',
  express: 'agent-first-express.js',
};

interface Answer {
  framework: string;
  listeningAt: net.AddressInfo | null;
}

/** Rejects as soon as a worker exits: a worker that crashes after 'ready' would otherwise go unseen. */
function workerExit(proxy: ServiceProxy): Promise<never> {
  const exited = new Promise<never>((_resolve, reject) => {
    proxy.once('worker-exit', (_agent, code: number, reason: string) =>
      reject(new Error(`a worker exited with ${code}: ${reason}`)),
    );
  });
  exited.catch(() => {});
  return exited;
}

for (const [framework, file] of Object.entries(apps)) {
  t.test(`${framework}: the proxy's server still binding when createServiceProxy() runs`, async (t) => {
    const server = net.createServer();
    server.listen({ port: 0, host: '127.0.0.1' });
    const proxy = createServiceProxy({ server, workerURL: fixture(file), workerCount: 1 });
    t.teardown(() => proxy.shutdown({ timeout: 2000 }));
    t.equal(server.address(), null, 'the server had not bound yet');
    const exited = workerExit(proxy);
    const failed = once(proxy, 'error').then(([err]) => Promise.reject(err as Error));
    await Promise.race([once(proxy, 'ready'), failed, exited]);
    const { port } = server.address() as net.AddressInfo;
    const answer = await Promise.race([requestJSON<Answer>(port), exited]);
    t.equal(answer.framework, framework);
    t.match(answer.listeningAt, { address: '127.0.0.1', family: 'IPv4' }, "address() was known in 'listening'");
    t.equal(answer.listeningAt?.port, port, "the proxy's port, though its server was still binding at the start");
  });

  t.test(`${framework}: the agent made before listen() on port 0 takes the proxy's address`, async (t) => {
    const { proxy, server, port } = await startProxy(t, { workerURL: fixture(file), workerCount: 1 });
    const answer = await Promise.race([requestJSON<Answer>(port), workerExit(proxy)]);
    t.equal(answer.framework, framework);
    t.same(answer.listeningAt, server.address(), "address() in 'listening' is the proxy's");
  });
}
