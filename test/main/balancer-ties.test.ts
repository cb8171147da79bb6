import t from 'tap';
import { balancers, fixture, requestJSON, startProxy, transports } from '../helpers.ts';

const REQUESTS = 20;

// With every worker idle, a balancer that ranks by load must not always pick the same one.
for (const transport of transports) {
  for (const balance of balancers.filter((name) => name !== 'ip-hash')) {
    t.test(`${transport} × ${balance}: ${REQUESTS} sequential connections spread over both workers`, async (t) => {
      const { proxy, port } = await startProxy(t, {
        workerURL: fixture('http-server.js'),
        workerCount: 2,
        transport,
        balance,
      });
      const servedBy = new Map<number, number>();
      for (let i = 0; i < REQUESTS; i++) {
        const { threadId } = await requestJSON<{ threadId: number }>(port);
        servedBy.set(threadId, (servedBy.get(threadId) ?? 0) + 1);
      }
      const counts = proxy.agents.map((agent) => servedBy.get(agent.threadId) ?? 0);
      t.equal(counts.length, 2);
      t.ok(
        counts.every((count) => count >= REQUESTS / 4),
        `each worker served at least a quarter: ${counts.join(' and ')}`,
      );
    });
  }
}
