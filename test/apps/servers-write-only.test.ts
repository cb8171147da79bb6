import net from 'node:net';
import { once } from 'node:events';
import t from 'tap';
import { fixture, startProxy, transports, waitFor } from '../helpers.ts';

// A server that never reads must still see its peer's FIN, or every connection would stay open.
for (const transport of transports) {
  t.test(`${transport}: a server that never reads still closes its connections`, async (t) => {
    const { proxy, port } = await startProxy(t, { workerURL: fixture('write-only.js'), workerCount: 1, transport });
    for (let i = 0; i < 20; i++) {
      const client = net.connect(port, '127.0.0.1');
      let received = '';
      client.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
      await once(client, 'end');
      client.end();
      await once(client, 'close');
      t.equal(received, 'bye\n');
    }
    await waitFor(() => proxy.agents.every((agent) => agent.connections === 0), 5000);
    const stats = await proxy.stats();
    t.equal(stats.connections, 0, 'every connection closed in the worker');
  });
}
