// ip-hash behind a trusted reverse proxy: every request of one client reaches one worker, and the
// clients spread over the workers, though nginx carries them all over a few kept-alive connections.
import t from 'tap';
import { fixture, requestJSON } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';
import {
  clientAddresses,
  clientsPerUpstreamConnection,
  nginxInFront,
  type Reply,
  requestsOf,
} from '../nginx-in-front.ts';
import { skipUnlessInstalled } from '../services.ts';
import { allTransports, skipUnlessSupported } from '../transport-support.ts';

const APP = fixture('express-app.js').pathname;
const CLIENTS = 16;

for (const transport of allTransports) {
  t.test(
    `${transport}: behind nginx, one worker per client, the clients on both`,
    { skip: skipUnlessInstalled('nginx') || skipUnlessSupported(transport) },
    async (t) => {
      const args = ['--workers', '2', '--transport', transport, '--balance', 'ip-hash', '--trust-proxy', '127.0.0.1'];
      const launcher = await startLauncher(t, [APP, ...args]);
      const port = await nginxInFront(t, launcher.port);
      const replies = await requestsOf(port, clientAddresses(CLIENTS), 4);
      t.ok(clientsPerUpstreamConnection(replies) > 1, 'an upstream connection carried several clients');
      const workers = new Set<number>();
      for (const [client, list] of replies) {
        const threads = new Set(list.map((reply) => reply.threadId));
        t.equal(threads.size, 1, `${client}: all its requests on one worker`);
        for (const thread of threads) workers.add(thread);
      }
      t.equal(workers.size, 2, 'the clients spread over both workers');
    },
  );
}

t.test('from a peer not trusted, a spoofed X-Forwarded-For does not move its requests', async (t) => {
  const args = ['--workers', '2', '--balance', 'ip-hash', '--trust-proxy', '127.0.0.1'];
  const launcher = await startLauncher(t, [APP, ...args]);
  const threads = new Set<number>();
  for (let i = 0; i < 16; i++) {
    const reply = await requestJSON<Reply>(launcher.port, {
      localAddress: '127.0.0.7',
      headers: { 'X-Forwarded-For': `10.0.${i}.1` },
    });
    threads.add(reply.threadId);
  }
  t.equal(threads.size, 1, 'one worker, whatever the header names');
});
