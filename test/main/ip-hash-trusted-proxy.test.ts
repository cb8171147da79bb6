// ip-hash at the main thread does not key a trusted proxy's connections on the proxy's address: they
// carry many clients, whose requests the workers route one by one, so they go to the least busy worker.
import net from 'node:net';
import t from 'tap';

interface Candidate {
  id: number;
  slot: number;
  connections: number;
}
const { createBalancer } = (await import(new URL('../../dist/lib/balancers/index.js', import.meta.url).href)) as {
  createBalancer: (
    name: string,
    bits: number,
    trustProxy?: net.BlockList,
  ) => { pick: (candidates: Candidate[], socket: object) => Candidate | undefined };
};

const workers = (): Candidate[] => [
  { id: 1, slot: 0, connections: 0 },
  { id: 2, slot: 1, connections: 0 },
];
const from = (remoteAddress: string) => ({ remoteAddress });

function picks(trustProxy: net.BlockList | undefined, address: string): Set<number> {
  const balancer = createBalancer('ip-hash', 64, trustProxy);
  const candidates = workers();
  const picked = new Set<number>();
  for (let i = 0; i < 8; i++) {
    const worker = balancer.pick(candidates, from(address))!;
    worker.connections++;
    picked.add(worker.id);
  }
  return picked;
}

t.test("a trusted proxy's connections spread over the workers", async (t) => {
  const trusted = new net.BlockList();
  trusted.addAddress('127.0.0.1');
  t.equal(picks(trusted, '127.0.0.1').size, 2);
  t.equal(picks(trusted, '::ffff:127.0.0.1').size, 2, 'in IPv4-mapped form too');
});

t.test('any other peer keeps one worker', async (t) => {
  const trusted = new net.BlockList();
  trusted.addAddress('127.0.0.1');
  t.equal(picks(trusted, '127.0.0.2').size, 1);
  t.equal(picks(undefined, '127.0.0.1').size, 1, 'without trustProxy');
});
