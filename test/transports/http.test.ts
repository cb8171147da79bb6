import t from 'tap';
import { balancers, requestJSON, startProxy, transports } from '../helpers.ts';
import { fixture } from '../helpers.ts';

interface Info {
  threadId: number;
  sync: { remote: { address: string; port: number }; local: { port: number } };
  requested: { remote: { address: string } };
}

for (const transport of transports) {
  for (const balance of balancers) {
    t.test(`${transport} × ${balance}: requests reach the workers with the client's address`, async (t) => {
      const { proxy, port } = await startProxy(t, {
        workerURL: fixture('http-server.js'),
        workerCount: 2,
        transport,
        balance,
      });
      t.equal(proxy.transport, transport);
      const threads = new Set<number>();
      for (let i = 0; i < 8; i++) {
        const localAddress = `127.0.0.${10 + i}`;
        const info = await requestJSON<Info>(port, { localAddress });
        t.equal(info.sync.remote.address, localAddress);
        t.equal(info.requested.remote.address, localAddress);
        t.equal(info.sync.local.port, port);
        threads.add(info.threadId);
      }
      if (balance !== 'ip-hash') t.equal(threads.size, 2, 'both workers served');
    });
  }
}
