// trustProxy: behind a trusted reverse proxy, the plugins' clientAddress is the client that the
// forwarding headers name, request by request, though one upstream connection carries several clients.
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

for (const transport of allTransports) {
  t.test(
    `${transport}: behind nginx, each request's clientAddress is its own client's`,
    { skip: skipUnlessInstalled('nginx') || skipUnlessSupported(transport) },
    async (t) => {
      const launcher = await startLauncher(t, [
        APP,
        '--workers',
        '2',
        '--transport',
        transport,
        '--trust-proxy',
        '127.0.0.1',
      ]);
      const port = await nginxInFront(t, launcher.port);
      const clients = clientAddresses(6);
      const replies = await requestsOf(port, clients, 3, { 'X-Forwarded-For': '6.6.6.6' });
      t.ok(clientsPerUpstreamConnection(replies) > 1, 'an upstream connection carried several clients');
      for (const [client, list] of replies) {
        t.same(
          list.map((reply) => reply.hello),
          list.map(() => client),
          `${client}: the client nginx saw, not what it claimed to be`,
        );
      }
    },
  );
}

t.test('without --trust-proxy, the headers are ignored', { skip: skipUnlessInstalled('nginx') }, async (t) => {
  const launcher = await startLauncher(t, [APP, '--workers', '2']);
  const port = await nginxInFront(t, launcher.port);
  const replies = await requestsOf(port, clientAddresses(2), 1);
  for (const list of replies.values()) t.equal(list[0]!.hello, '127.0.0.1', 'nginx itself');
});

t.test('from a peer not trusted, a spoofed X-Forwarded-For is ignored', async (t) => {
  const launcher = await startLauncher(t, [APP, '--workers', '2', '--trust-proxy', '127.0.0.1']);
  const reply = await requestJSON<Reply>(launcher.port, {
    localAddress: '127.0.0.7',
    headers: { 'X-Forwarded-For': '6.6.6.6', Forwarded: 'for=6.6.6.6' },
  });
  t.equal(reply.hello, '127.0.0.7');
  const trusted = await requestJSON<Reply>(launcher.port, {
    localAddress: '127.0.0.1',
    headers: { Forwarded: 'for="[2001:db8::7]:4711"', 'X-Forwarded-For': '6.6.6.6' },
  });
  t.equal(trusted.hello, '2001:db8::7', 'from the trusted address, Forwarded names the client');
});
