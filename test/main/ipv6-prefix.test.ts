// One IPv6 client usually holds a whole /64: the per-address limit and ip-hash count it as one client,
// unless perIpPrefix says otherwise.
import net from 'node:net';
import t from 'tap';
import { fixture, startProxy } from '../helpers.ts';

const dist = (file: string): string => new URL(`../../dist/lib/${file}`, import.meta.url).href;
const { ConnectionLedger } = (await import(dist('main/ledger.js'))) as typeof import('../../lib/main/ledger.ts');
const { IpHashBalancer } = (await import(
  dist('balancers/ip-hash.js')
)) as typeof import('../../lib/balancers/ip-hash.ts');

const fromAddress = (remoteAddress: string): net.Socket => ({ remoteAddress }) as net.Socket;
const inOne64 = Array.from({ length: 32 }, (_, i) => `2001:db8:1:2::${(i + 1).toString(16)}`);

t.test('the per-address limit counts an IPv6 /64 as one client by default', async (t) => {
  const ledger = new ConnectionLedger({ maxConnections: 0, maxConnectionsPerIp: 2, perIpPrefix: 64 });
  t.equal(ledger.peerOf(fromAddress('2001:db8:1:2::a')), ledger.peerOf(fromAddress('2001:db8:1:2:ffff::b')));
  t.equal(ledger.admit(ledger.peerOf(fromAddress(inOne64[0]!))), undefined);
  t.equal(ledger.admit(ledger.peerOf(fromAddress(inOne64[1]!))), undefined);
  t.equal(
    ledger.admit(ledger.peerOf(fromAddress(inOne64[2]!))),
    'maxConnectionsPerIp',
    'a third address of the same /64 is refused',
  );
  t.equal(ledger.admit(ledger.peerOf(fromAddress('2001:db8:1:3::1'))), undefined, 'the next /64 is another client');
  t.equal(ledger.admit(ledger.peerOf(fromAddress('10.0.0.1'))), undefined);
  t.equal(
    ledger.admit(ledger.peerOf(fromAddress('::ffff:10.0.0.1'))),
    undefined,
    'IPv4 clients are counted by their address',
  );
  t.equal(
    ledger.admit(ledger.peerOf(fromAddress('10.0.0.1'))),
    'maxConnectionsPerIp',
    'the same IPv4 client, however spelled',
  );
  ledger.release(ledger.peerOf(fromAddress(inOne64[5]!)));
  t.equal(
    ledger.admit(ledger.peerOf(fromAddress(inOne64[9]!))),
    undefined,
    'a place freed by one address of the /64 serves another',
  );
});

t.test('perIpPrefix 128 counts each IPv6 address on its own', async (t) => {
  const ledger = new ConnectionLedger({ maxConnections: 0, maxConnectionsPerIp: 1, perIpPrefix: 128 });
  for (const address of inOne64) t.equal(ledger.admit(ledger.peerOf(fromAddress(address))), undefined);
  t.equal(ledger.admit(ledger.peerOf(fromAddress(inOne64[0]!))), 'maxConnectionsPerIp');
});

t.test('ip-hash keys an IPv6 client by the same network', async (t) => {
  const candidates = [0, 1, 2, 3].map((slot) => ({ id: slot, slot, connections: 0 }));
  const picked = (bits: number): Set<number> => {
    const balancer = new IpHashBalancer(bits);
    return new Set(inOne64.map((address) => balancer.pick(candidates, fromAddress(address))!.slot));
  };
  t.equal(picked(64).size, 1, 'every address of the /64 goes to one worker');
  t.ok(picked(128).size > 1, 'with 128, the addresses spread');
});

/** The worker that answers a request whose PROXY v1 header names `client`. */
function threadFor(port: number, client: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let reply = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (reply += chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const body = reply.slice(reply.indexOf('\r\n\r\n') + 4);
      resolve((JSON.parse(body) as { threadId: number }).threadId);
    });
    socket.write(
      `PROXY TCP6 ${client} 2001:db8::1 40000 443\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
  });
}

for (const perIpPrefix of [64, 128]) {
  t.test(
    `behind a balancer, ip-hash with perIpPrefix ${perIpPrefix}: the clients of one /64 ${perIpPrefix === 64 ? 'share a worker' : 'spread'}`,
    async (t) => {
      const { port } = await startProxy(t, {
        workerURL: fixture('http-server.js'),
        workerCount: 4,
        balance: 'ip-hash',
        transport: 'pipe',
        proxyProtocol: true,
        perIpPrefix,
      });
      const threads = new Set<number>();
      for (const client of inOne64.slice(0, 16)) threads.add(await threadFor(port, client));
      if (perIpPrefix === 64)
        t.equal(threads.size, 1, `16 addresses of one /64, one worker (${[...threads].join(', ')})`);
      else t.ok(threads.size > 1, `16 addresses, ${threads.size} workers`);
    },
  );
}
