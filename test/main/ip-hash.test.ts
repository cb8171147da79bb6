import { once } from 'node:events';
import t from 'tap';
import { consoleHandler, Level } from 'socketnaut';
import { fixture, requestJSON, startProxy, transports, withDeadline } from '../helpers.ts';

interface Candidate {
  id: number;
  slot: number;
  connections: number;
}
type PickByKey = <T extends Candidate>(candidates: readonly T[], key: string) => T | undefined;

const { pickByKey } = (await import(new URL('../../dist/lib/balancers/ip-hash.js', import.meta.url).href)) as {
  pickByKey: PickByKey;
};

// Workers are terminated here on purpose; keep the warnings about it off the test output.
const previousLevel = consoleHandler.level;
consoleHandler.setLevel(process.env.SOCKETNAUT_TEST_LOG === 'debug' ? Level.DEBUG : Level.ERROR);
t.teardown(() => consoleHandler.setLevel(previousLevel));

const CLIENTS = Array.from({ length: 20 }, (_, i) => `127.0.0.${10 + i}`);

/** The thread that served each client address, asking `rounds` times; undefined where it varied. */
async function placement(port: number, rounds: number): Promise<Map<string, number | undefined>> {
  const seen = new Map<string, Set<number>>(CLIENTS.map((address) => [address, new Set()]));
  for (let round = 0; round < rounds; round++) {
    await Promise.all(
      CLIENTS.map(async (localAddress) => {
        const { threadId } = await requestJSON<{ threadId: number }>(port, { localAddress });
        seen.get(localAddress)!.add(threadId);
      }),
    );
  }
  return new Map([...seen].map(([address, threads]) => [address, threads.size === 1 ? [...threads][0] : undefined]));
}

for (const transport of transports) {
  t.test(`${transport}: each client address sticks to one worker, and keeps it when another is replaced`, async (t) => {
    const { proxy, port } = await startProxy(t, {
      workerURL: fixture('http-server.js'),
      workerCount: 4,
      balance: 'ip-hash',
      transport,
    });

    let before = await placement(port, 5);
    t.same(
      CLIENTS.filter((address) => before.get(address) === undefined),
      [],
      'every address was served by the same worker all 5 times',
    );

    // Each replacement is a new worker; the property must hold for every one, not only the first.
    for (const step of [1, 2]) {
      const perThread = new Map<number, string[]>();
      for (const [address, threadId] of before)
        perThread.set(threadId!, [...(perThread.get(threadId!) ?? []), address]);
      t.ok(perThread.size > 1, `the addresses are spread over the workers (${perThread.size} of 4)`);

      // Replace the worker with the most clients, so that some clients must move.
      const [victimThread, victimClients] = [...perThread].sort((a, b) => b[1].length - a[1].length)[0]!;
      const victim = proxy.agents.find((a) => a.threadId === victimThread)!;
      const replaced = once(proxy, 'worker-online');
      await victim.worker.terminate();
      await withDeadline(replaced, 5000, 'replacement worker online');
      t.equal(proxy.agents.filter((a) => a.state === 'ready').length, 4, `replacement ${step}: back to 4 workers`);

      const after = await placement(port, 3);
      t.same(
        CLIENTS.filter((address) => after.get(address) === undefined),
        [],
        `replacement ${step}: every address still sticks to one worker`,
      );
      const survivorsMoved = CLIENTS.filter(
        (address) => !victimClients.includes(address) && after.get(address) !== before.get(address),
      ).map((address) => `${address}: ${before.get(address)} -> ${after.get(address)}`);
      t.same(survivorsMoved, [], `replacement ${step}: clients of the surviving workers stayed where they were`);
      t.ok(
        victimClients.every((address) => after.get(address) !== victimThread),
        `replacement ${step}: the replaced worker's clients moved`,
      );
      before = after;
    }
  });
}

t.test('pickByKey: rendezvous hashing moves only the keys it must', async (t) => {
  const keys = Array.from({ length: 2000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.${i % 7}`);
  const candidates: Candidate[] = [1, 2, 3, 4, 5].map((id) => ({ id, slot: id, connections: 0 }));
  const assign = (list: readonly Candidate[]): Map<string, number> =>
    new Map(keys.map((key) => [key, pickByKey(list, key)!.id]));

  const base = assign(candidates);
  t.same(assign([...candidates].reverse()), base, 'the order of the candidates does not matter');
  t.same(assign(candidates), base, 'the same keys land on the same candidates again');
  const counts = candidates.map((c) => [...base.values()].filter((id) => id === c.id).length);
  t.ok(
    counts.every((count) => count > keys.length / candidates.length / 2),
    `keys are spread over every candidate (${counts.join(', ')})`,
  );
  t.equal(pickByKey([], 'x'), undefined, 'no candidates, no pick');

  for (const removed of candidates) {
    const without = assign(candidates.filter((c) => c !== removed));
    const moved = keys.filter((key) => without.get(key) !== base.get(key));
    t.ok(
      moved.every((key) => base.get(key) === removed.id),
      `removing ${removed.id} moves only keys that were on it`,
    );
    t.equal(moved.length, counts[candidates.indexOf(removed)], `and moves all ${moved.length} of them`);
  }

  const added: Candidate = { id: 6, slot: 6, connections: 0 };
  const withAdded = assign([...candidates, added]);
  const moved = keys.filter((key) => withAdded.get(key) !== base.get(key));
  t.ok(moved.length > 0, `adding a candidate takes keys (${moved.length})`);
  t.ok(
    moved.every((key) => withAdded.get(key) === added.id),
    'adding a candidate moves keys only onto it',
  );
});
