import { once } from 'node:events';
import http from 'node:http';
import t from 'tap';
import { consoleHandler, Level } from 'socketnaut';
import { fixture, requestJSON, startProxy, transports, waitFor } from '../helpers.ts';

// The worker is terminated on purpose; keep its exit warning off the test output.
consoleHandler.setLevel(Level.ERROR);

// Connections a dead worker held must not stay counted against the limits.
for (const transport of transports) {
  t.test(`${transport}: a worker that dies with open connections gives its share of maxConnections back`, async (t) => {
    const { proxy, port } = await startProxy(t, {
      workerURL: fixture('http-server.js'),
      workerCount: 1,
      transport,
      maxConnections: 3,
      maxConnectionsPerIp: 3,
    });
    const held = Array.from({ length: 3 }, () => {
      const req = http.get({ host: '127.0.0.1', port, path: '/slow?ms=5000', agent: false });
      req.on('error', () => {});
      return req;
    });
    t.teardown(() => held.forEach((req) => req.destroy()));
    await waitFor(() => proxy.agents[0]?.connections === 3);
    const [dead] = proxy.agents;
    const online = once(proxy, 'worker-online');
    await dead!.worker.terminate();
    await online;
    // Piped connections the dead worker had not yet taken go, intact, to its replacement, which serves
    // them to their end (5 s); those it held are cut. Either way, all are counted out.
    await waitFor(() => proxy.agents.every((agent) => agent.connections === 0), {
      timeout: 10_000,
      what: 'every connection counted out',
    });
    for (let i = 0; i < 3; i++) {
      const reply = await requestJSON<{ threadId: number }>(port);
      t.not(reply.threadId, dead!.threadId, `request ${i + 1} is served by the replacement`);
    }
    t.equal((await proxy.stats()).refused, 0, 'nothing was refused');
  });
}
