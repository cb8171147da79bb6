import t from 'tap';
import type { LocalCounts as Counts } from '../../lib/main/admission-counts.ts';
import type { ConnectionLedger as Ledger, ConnectionLimits, WorkerAccount as Account } from '../../lib/main/ledger.ts';

// Internal: the one owner of every open-connection count on the main thread, tested without threads.
const { ConnectionLedger, WorkerAccount } = (await import(
  new URL('../../dist/lib/main/ledger.js', import.meta.url).href
)) as {
  ConnectionLedger: typeof Ledger;
  WorkerAccount: typeof Account;
};

const { LocalCounts } = (await import(new URL('../../dist/lib/main/admission-counts.js', import.meta.url).href)) as {
  LocalCounts: typeof Counts;
};

/** A ledger, and what its counts hold: open in all, and from one peer, read from counts given to it. */
function ledgerOf(
  limits: Partial<ConnectionLimits> = {},
): Ledger & { readonly open: number; openFrom(peer: string): number } {
  const ledger = new ConnectionLedger({ maxConnections: 0, maxConnectionsPerIp: 0, perIpPrefix: 64, ...limits });
  const counts = new LocalCounts();
  ledger.useCounts(counts);
  return Object.defineProperties(ledger as Ledger & { readonly open: number; openFrom(peer: string): number }, {
    open: { get: () => counts.open },
    openFrom: { value: (peer: string) => counts.openFrom(peer) },
  });
}

/** An account whose onIdle calls are counted. */
function countedAccount(): Account & { idleCalls: number } {
  const account = new WorkerAccount() as Account & { idleCalls: number };
  account.idleCalls = 0;
  account.onIdle = () => {
    account.idleCalls++;
  };
  return account;
}

function shape(account: Account): {
  pending: number;
  held: number;
  total: number;
  connections: number;
  peers: Record<string, number>;
} {
  return {
    pending: account.pending,
    held: account.held,
    total: account.total,
    connections: account.connections,
    peers: Object.fromEntries(account.peers ?? []),
  };
}

t.test('admit counts each connection in all and per peer', async (t) => {
  const ledger = ledgerOf({ maxConnectionsPerIp: 10 });
  t.equal(ledger.trackPeers, true, 'a per-address limit tracks peers');
  t.equal(ledger.open, 0);
  t.equal(ledger.admit('10.0.0.1'), undefined);
  t.equal(ledger.admit('10.0.0.1'), undefined);
  t.equal(ledger.admit('10.0.0.2'), undefined);
  t.equal(ledger.open, 3, 'three open in all');
  t.equal(ledger.openFrom('10.0.0.1'), 2);
  t.equal(ledger.openFrom('10.0.0.2'), 1);
  t.equal(ledger.openFrom('10.0.0.3'), 0, 'an unknown peer has none');
  ledger.release('10.0.0.1');
  t.equal(ledger.open, 2);
  t.equal(ledger.openFrom('10.0.0.1'), 1);
  ledger.release('10.0.0.1');
  ledger.release('10.0.0.2');
  t.equal(ledger.open, 0);
  t.equal(ledger.openFrom('10.0.0.1'), 0);
  t.equal(ledger.openFrom('10.0.0.2'), 0);
});

t.test('without a per-address limit, peers are not counted', async (t) => {
  const ledger = ledgerOf({ maxConnections: 5 });
  t.equal(ledger.trackPeers, false);
  t.equal(ledger.admit('10.0.0.1'), undefined);
  t.equal(ledger.admit('10.0.0.1'), undefined);
  t.equal(ledger.open, 2);
  t.equal(ledger.openFrom('10.0.0.1'), 0, 'openFrom is always 0 when not tracking peers');
  const account = countedAccount();
  ledger.assign(account);
  ledger.delivered(account, '10.0.0.1');
  t.equal(account.peers, undefined, 'no peer map is kept for the worker either');
  ledger.ended(account, 1, ['10.0.0.1']);
  ledger.release('10.0.0.1');
  t.equal(ledger.open, 0);
  t.same(shape(account), { pending: 0, held: 0, total: 1, connections: 0, peers: {} });
});

t.test('maxConnections refuses by name and counts nothing for the refused connection', async (t) => {
  const ledger = ledgerOf({ maxConnections: 2, maxConnectionsPerIp: 10 });
  t.equal(ledger.maxConnections, 2);
  t.equal(ledger.admit('a'), undefined);
  t.equal(ledger.admit('b'), undefined);
  t.equal(ledger.admit('c'), 'maxConnections');
  t.equal(ledger.admit('a'), 'maxConnections');
  t.equal(ledger.open, 2, 'refused connections are not counted in all');
  t.equal(ledger.openFrom('c'), 0, 'nor for their peer');
  t.equal(ledger.openFrom('a'), 1);
  ledger.release('b');
  t.equal(ledger.admit('c'), undefined, 'a released place is free again');
  t.equal(ledger.admit('c'), 'maxConnections', 'and only that one');
  t.equal(ledger.openFrom('c'), 1);
  t.equal(ledger.open, 2);
});

t.test('maxConnectionsPerIp refuses by name, only for that peer, and counts nothing for the refused one', async (t) => {
  const ledger = ledgerOf({ maxConnectionsPerIp: 2 });
  t.equal(ledger.admit('a'), undefined);
  t.equal(ledger.admit('a'), undefined);
  for (let i = 0; i < 5; i++) t.equal(ledger.admit('a'), 'maxConnectionsPerIp', `refusal ${i + 1}`);
  t.equal(ledger.openFrom('a'), 2, 'the refusals were not counted for the peer');
  t.equal(ledger.open, 2, 'nor in all');
  t.equal(ledger.admit('b'), undefined, 'another peer is admitted');
  t.equal(ledger.open, 3);
  ledger.release('a');
  t.equal(ledger.admit('a'), undefined, 'one place came free');
  t.equal(ledger.admit('a'), 'maxConnectionsPerIp', 'exactly one');
});

t.test('a connection with no address (a Unix socket) counts in all, not per peer', async (t) => {
  const ledger = ledgerOf({ maxConnections: 5, maxConnectionsPerIp: 1 });
  const account = countedAccount();
  for (let i = 0; i < 3; i++)
    t.equal(ledger.admit(''), undefined, `unix connection ${i + 1} admitted despite maxConnectionsPerIp 1`);
  t.equal(ledger.open, 3);
  t.equal(ledger.openFrom(''), 0, 'no per-peer count for it');
  ledger.assign(account);
  ledger.delivered(account, '');
  ledger.assign(account);
  ledger.delivered(account, '');
  t.same(shape(account), { pending: 0, held: 2, total: 2, connections: 2, peers: {} }, 'nor in the worker account');
  ledger.ended(account, 1, ['']);
  ledger.workerExited(account);
  ledger.release('');
  t.equal(ledger.open, 0);
  t.equal(ledger.openFrom(''), 0, 'and nothing goes below 0 for it');
  t.same(shape(account), { pending: 0, held: 0, total: 2, connections: 0, peers: {} });
  t.equal(ledger.admit('a'), undefined);
  t.equal(ledger.admit('a'), 'maxConnectionsPerIp', 'the limit still holds for addresses');
  for (let i = 0; i < 4; i++) t.equal(ledger.admit(''), undefined);
  t.equal(ledger.admit(''), 'maxConnections', 'and maxConnections for unix connections too');
});

t.test('with both limits reached, maxConnections is the one named', async (t) => {
  const ledger = ledgerOf({ maxConnections: 2, maxConnectionsPerIp: 2 });
  ledger.admit('a');
  ledger.admit('a');
  t.equal(ledger.admit('a'), 'maxConnections');
  t.equal(ledger.admit('b'), 'maxConnections');
  t.equal(ledger.openFrom('b'), 0);
});

t.test('defaultMaxConnections applies only where maxConnections is unlimited', async (t) => {
  const unlimited = ledgerOf();
  t.equal(unlimited.maxConnections, 0);
  for (let i = 0; i < 100; i++) t.equal(unlimited.admit('a'), undefined);
  unlimited.defaultMaxConnections(3);
  t.equal(unlimited.maxConnections, 3);
  t.equal(unlimited.admit('a'), 'maxConnections', 'the default binds counts made before it was set');
  for (let i = 0; i < 98; i++) unlimited.release('a');
  t.equal(unlimited.open, 2);
  t.equal(unlimited.admit('a'), undefined);
  t.equal(unlimited.admit('a'), 'maxConnections');
  unlimited.defaultMaxConnections(50);
  t.equal(unlimited.maxConnections, 3, 'a second default does not replace the first');

  const limited = ledgerOf({ maxConnections: 5 });
  limited.defaultMaxConnections(1);
  t.equal(limited.maxConnections, 5, "the user's limit stands");
  for (let i = 0; i < 5; i++) t.equal(limited.admit('a'), undefined);
  t.equal(limited.admit('a'), 'maxConnections');
});

t.test('assign, delivered and ended move a connection through a worker account', async (t) => {
  const ledger = ledgerOf({ maxConnectionsPerIp: 5 });
  const account = countedAccount();
  t.same(shape(account), { pending: 0, held: 0, total: 0, connections: 0, peers: {} });
  ledger.admit('a');
  ledger.admit('a');
  ledger.admit('b');
  ledger.assign(account);
  ledger.assign(account);
  ledger.assign(account);
  t.same(shape(account), { pending: 3, held: 0, total: 3, connections: 3, peers: {} }, 'on their way');
  t.equal(ledger.open, 3, 'assigning does not change the open count');
  ledger.delivered(account, 'a');
  ledger.delivered(account, 'a');
  ledger.delivered(account, 'b');
  t.same(
    shape(account),
    { pending: 0, held: 3, total: 3, connections: 3, peers: { a: 2, b: 1 } },
    'held, with their peers',
  );
  t.equal(ledger.open, 3);
  t.equal(account.idleCalls, 0);

  ledger.ended(account, 1, ['a']);
  t.same(shape(account), { pending: 0, held: 2, total: 3, connections: 2, peers: { a: 1, b: 1 } });
  t.equal(ledger.open, 2);
  t.equal(ledger.openFrom('a'), 1);
  t.equal(account.idleCalls, 0, 'not idle while it holds any');

  ledger.ended(account, 0, []);
  t.same(
    shape(account),
    { pending: 0, held: 2, total: 3, connections: 2, peers: { a: 1, b: 1 } },
    'a report of none changes nothing',
  );
  t.equal(account.idleCalls, 0);

  const before = account.idleSince;
  ledger.ended(account, 2, ['b', 'a']);
  t.same(shape(account), { pending: 0, held: 0, total: 3, connections: 0, peers: {} }, 'peer entries at 0 are removed');
  t.equal(ledger.open, 0);
  t.equal(ledger.openFrom('a'), 0);
  t.equal(ledger.openFrom('b'), 0);
  t.equal(account.idleCalls, 1, 'onIdle once the account falls to 0');
  t.ok(account.idleSince >= before, 'idleSince moved to when it fell idle');
});

t.test('unassign brings a connection back to the main thread, still open', async (t) => {
  const ledger = ledgerOf({ maxConnectionsPerIp: 5 });
  const first = countedAccount();
  const second = countedAccount();
  ledger.admit('a');
  ledger.assign(first);
  // Refused by the first worker: back in the main thread's hands, then offered to another.
  ledger.unassign(first);
  t.same(shape(first), { pending: 0, held: 0, total: 1, connections: 0, peers: {} }, 'total keeps the attempt');
  t.equal(first.idleCalls, 1, 'the account fell to 0');
  t.equal(ledger.open, 1, 'still open');
  t.equal(ledger.openFrom('a'), 1);
  ledger.assign(second);
  // Dropped on the way: unassigned, then released by the main thread.
  ledger.unassign(second);
  ledger.release('a');
  t.same(shape(second), { pending: 0, held: 0, total: 1, connections: 0, peers: {} });
  t.equal(second.idleCalls, 1);
  t.equal(ledger.open, 0);
  t.equal(ledger.openFrom('a'), 0);
});

t.test('onIdle fires only when the account falls to 0, not while some are pending', async (t) => {
  const ledger = ledgerOf();
  const account = countedAccount();
  ledger.admit('');
  ledger.admit('');
  ledger.assign(account);
  ledger.assign(account);
  ledger.delivered(account, '');
  ledger.ended(account, 1);
  t.equal(account.idleCalls, 0, 'one still pending');
  ledger.delivered(account, '');
  t.equal(account.idleCalls, 0, 'delivering never makes an account idle');
  ledger.ended(account, 1);
  t.equal(account.idleCalls, 1);
  t.equal(ledger.open, 0);
});

t.test('workerExited counts out what the worker held, with its peers, but not what is still on its way', async (t) => {
  const ledger = ledgerOf({ maxConnectionsPerIp: 10 });
  const account = countedAccount();
  for (const peer of ['a', 'a', 'b', 'a', 'c']) ledger.admit(peer);
  for (let i = 0; i < 5; i++) ledger.assign(account);
  ledger.delivered(account, 'a');
  ledger.delivered(account, 'a');
  ledger.delivered(account, 'b');
  // Two pipe connections ('a' and 'c') are still connecting to the worker's Unix socket.
  t.same(shape(account), { pending: 2, held: 3, total: 5, connections: 5, peers: { a: 2, b: 1 } });

  ledger.workerExited(account);
  t.same(
    shape(account),
    { pending: 2, held: 0, total: 5, connections: 2, peers: {} },
    'the held ones are gone, the pending ones stay',
  );
  t.equal(ledger.open, 2, 'the two on their way are still open');
  t.equal(ledger.openFrom('a'), 1);
  t.equal(ledger.openFrom('b'), 0);
  t.equal(ledger.openFrom('c'), 1);
  t.equal(account.idleCalls, 0, 'not idle while connections are on their way');

  // One is refused by the dead worker's socket and offered to another worker, which serves it.
  const next = countedAccount();
  ledger.unassign(account);
  ledger.assign(next);
  ledger.delivered(next, 'a');
  // The other is dropped: the main thread closes it.
  ledger.unassign(account);
  ledger.release('c');
  t.same(shape(account), { pending: 0, held: 0, total: 5, connections: 0, peers: {} });
  t.equal(account.idleCalls, 1, 'idle once the last comes back');
  t.equal(ledger.open, 1);
  t.equal(ledger.openFrom('c'), 0);
  ledger.ended(next, 1, ['a']);
  t.equal(ledger.open, 0);
  t.equal(ledger.openFrom('a'), 0);
  t.same(shape(next), { pending: 0, held: 0, total: 1, connections: 0, peers: {} });

  ledger.workerExited(account);
  t.equal(ledger.open, 0, 'a second exit report counts out nothing');
  t.same(shape(account), { pending: 0, held: 0, total: 5, connections: 0, peers: {} });
});

t.test('workerExited after some were already reported closed counts out only the rest', async (t) => {
  const ledger = ledgerOf({ maxConnectionsPerIp: 10 });
  const account = countedAccount();
  for (const peer of ['a', 'b', 'b', 'c']) {
    ledger.admit(peer);
    ledger.assign(account);
    ledger.delivered(account, peer);
  }
  ledger.ended(account, 2, ['b', 'a']);
  ledger.workerExited(account);
  t.equal(ledger.open, 0);
  for (const peer of ['a', 'b', 'c']) t.equal(ledger.openFrom(peer), 0, `nothing left from ${peer}`);
  t.same(shape(account), { pending: 0, held: 0, total: 4, connections: 0, peers: {} });
  t.equal(account.idleCalls, 1, 'idle once, when the exit took the last two');
});

t.test('a connection that reaches a worker after it exited is counted out when it ends', async (t) => {
  const ledger = ledgerOf({ maxConnectionsPerIp: 1 });
  const account = countedAccount();
  ledger.admit('a');
  ledger.assign(account);
  ledger.workerExited(account);
  t.equal(ledger.open, 1);
  // A pipe connection whose Unix socket connected just before the worker died.
  ledger.delivered(account, 'a');
  t.same(shape(account), { pending: 0, held: 1, total: 1, connections: 1, peers: { a: 1 } });
  t.equal(ledger.admit('a'), 'maxConnectionsPerIp');
  ledger.ended(account, 1, ['a']);
  t.equal(ledger.open, 0);
  t.equal(ledger.openFrom('a'), 0);
  t.same(shape(account), { pending: 0, held: 0, total: 1, connections: 0, peers: {} });
  t.equal(ledger.admit('a'), undefined, 'the place is free again');
});

t.test('a connection counted out twice shows as a negative count, not floored', async (t) => {
  const ledger = ledgerOf({ maxConnections: 2, maxConnectionsPerIp: 1 });
  ledger.admit('a');
  ledger.release('a');
  ledger.release('a');
  t.equal(ledger.open, -1, 'open goes below 0');
  t.equal(ledger.openFrom('a'), -1, 'so does the peer count');
  // Which is how drift would show from outside: a limit admits one too many.
  t.equal(ledger.admit('a'), undefined);
  t.equal(ledger.admit('a'), undefined, 'a second connection from a peer limited to one is let in');
  t.equal(ledger.admit('a'), 'maxConnectionsPerIp');
  t.equal(ledger.admit('b'), undefined, 'and a third under maxConnections 2');
  t.equal(ledger.open, 2);
  t.equal(ledger.admit('c'), 'maxConnections');

  const account = countedAccount();
  const other = ledgerOf({ maxConnectionsPerIp: 4 });
  other.admit('x');
  other.assign(account);
  other.delivered(account, 'x');
  other.ended(account, 1, ['x']);
  other.workerExited(account);
  other.ended(account, 1, ['x']);
  t.equal(account.held, -1, 'a worker account reported closed twice goes below 0');
  t.equal(account.peers?.get('x'), -1, 'with its peer');
  t.equal(other.open, -1);
  t.equal(other.openFrom('x'), -1);
});

// A small, seeded PRNG, so that a failing sequence can be replayed with LEDGER_SEED.
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

type Where = 'main' | 'pending' | 'held';

interface Conn {
  peer: string;
  where: Where;
  /** The worker it was given to, while pending or held. */
  worker: ModelWorker | undefined;
}

interface ModelWorker {
  account: Account & { idleCalls: number };
  alive: boolean;
  assigned: number;
  expectedIdleCalls: number;
}

for (const [index, seed] of [
  process.env.LEDGER_SEED ? Number(process.env.LEDGER_SEED) : (Math.random() * 2 ** 32) >>> 0,
  1,
  0xdecafbad,
].entries()) {
  t.test(`random legal sequences return every count to exactly 0 (seed ${seed})`, async (t) => {
    t.comment(`seed ${seed}${index === 0 ? ' (replay with LEDGER_SEED)' : ''}`);
    const random = mulberry32(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const peers = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '::1', ''];
    const maxConnections = 40;
    const maxPerPeer = 12;
    const ledger = ledgerOf({ maxConnections, maxConnectionsPerIp: maxPerPeer });
    const conns = new Set<Conn>();
    const workers: ModelWorker[] = [];
    const newWorker = (): ModelWorker => {
      const worker: ModelWorker = { account: countedAccount(), alive: true, assigned: 0, expectedIdleCalls: 0 };
      workers.push(worker);
      return worker;
    };
    for (let i = 0; i < 3; i++) newWorker();
    const counts = { admitted: 0, refused: 0, exits: 0, lateDeliveries: 0, batches: 0 };
    const failures: string[] = [];

    const inAccount = (worker: ModelWorker, where: Where): Conn[] =>
      [...conns].filter((c) => c.worker === worker && c.where === where);
    const expectIdleIfEmpty = (worker: ModelWorker): void => {
      if (inAccount(worker, 'pending').length + inAccount(worker, 'held').length === 0) worker.expectedIdleCalls++;
    };
    const check = (step: number, action: string): void => {
      if (failures.length > 20) return;
      const fail = (what: string): void => {
        failures.push(`step ${step} (${action}): ${what}`);
      };
      if (ledger.open !== conns.size) fail(`open ${ledger.open}, expected ${conns.size}`);
      for (const peer of peers) {
        const expected = peer === '' ? 0 : [...conns].filter((c) => c.peer === peer).length;
        if (ledger.openFrom(peer) !== expected)
          fail(`openFrom(${peer}) ${ledger.openFrom(peer)}, expected ${expected}`);
      }
      for (const [i, worker] of workers.entries()) {
        const pending = inAccount(worker, 'pending').length;
        const held = inAccount(worker, 'held');
        const peerCounts: Record<string, number> = {};
        for (const c of held) if (c.peer !== '') peerCounts[c.peer] = (peerCounts[c.peer] ?? 0) + 1;
        const expected = {
          pending,
          held: held.length,
          total: worker.assigned,
          connections: pending + held.length,
          peers: peerCounts,
        };
        const actual = shape(worker.account);
        if (
          JSON.stringify(actual) !== JSON.stringify(expected) &&
          JSON.stringify(sortPeers(actual)) !== JSON.stringify(sortPeers(expected))
        ) {
          fail(`worker ${i}: ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
        }
        if (worker.account.idleCalls !== worker.expectedIdleCalls)
          fail(`worker ${i}: onIdle called ${worker.account.idleCalls} times, expected ${worker.expectedIdleCalls}`);
      }
    };

    const assignTo = (conn: Conn): void => {
      const worker = pick(workers.filter((w) => w.alive));
      ledger.assign(worker.account);
      worker.assigned++;
      conn.where = 'pending';
      conn.worker = worker;
    };

    const STEPS = 4000;
    for (let step = 0; step < STEPS; step++) {
      const all = [...conns];
      const main = all.filter((c) => c.where === 'main');
      const pending = all.filter((c) => c.where === 'pending');
      const held = all.filter((c) => c.where === 'held');
      const roll = random();
      let action: string;
      if (roll < 0.3 || all.length === 0) {
        action = 'admit';
        const peer = pick(peers);
        // A connection with no address (over a Unix socket) is not counted per peer.
        const fromPeer = peer === '' ? 0 : all.filter((c) => c.peer === peer).length;
        const expected =
          all.length >= maxConnections ? 'maxConnections' : fromPeer >= maxPerPeer ? 'maxConnectionsPerIp' : undefined;
        const got = ledger.admit(peer);
        if (got !== expected) failures.push(`step ${step}: admit(${peer}) gave ${got}, expected ${expected}`);
        if (got === undefined) {
          counts.admitted++;
          conns.add({ peer, where: 'main', worker: undefined });
        } else counts.refused++;
      } else if (roll < 0.45 && main.length > 0) {
        const conn = pick(main);
        if (random() < 0.8) {
          action = 'assign';
          assignTo(conn);
        } else {
          // Turned away from the queue: expired, abandoned, or no worker could start.
          action = 'release';
          ledger.release(conn.peer);
          conns.delete(conn);
        }
      } else if (roll < 0.65 && pending.length > 0) {
        const conn = pick(pending);
        const worker = conn.worker!;
        const r = random();
        if (r < 0.7) {
          action = worker.alive ? 'delivered' : 'delivered after exit';
          if (!worker.alive) counts.lateDeliveries++;
          ledger.delivered(worker.account, conn.peer);
          conn.where = 'held';
        } else if (r < 0.85) {
          action = 'refused';
          conn.where = 'main';
          conn.worker = undefined;
          ledger.unassign(worker.account);
          expectIdleIfEmpty(worker);
        } else {
          action = 'dropped';
          conns.delete(conn);
          ledger.unassign(worker.account);
          expectIdleIfEmpty(worker);
          ledger.release(conn.peer);
        }
      } else if (roll < 0.9 && held.length > 0) {
        const worker = pick(held).worker!;
        const ofWorker = inAccount(worker, 'held');
        // A worker's 'closed' report, or the pipe transport counting out one connection at a time.
        const count = random() < 0.5 ? 1 : 1 + Math.floor(random() * ofWorker.length);
        const ending = ofWorker.sort(() => random() - 0.5).slice(0, count);
        action = `ended ${ending.length}`;
        if (ending.length > 1) counts.batches++;
        for (const conn of ending) conns.delete(conn);
        ledger.ended(
          worker.account,
          ending.length,
          ending.map((c) => c.peer),
        );
        expectIdleIfEmpty(worker);
      } else {
        const alive = workers.filter((w) => w.alive);
        if (alive.length === 0 || random() < 0.85) {
          action = 'no-op';
          if (alive.length < 3) newWorker();
          check(step, action);
          continue;
        }
        const worker = pick(alive);
        action = 'worker exited';
        counts.exits++;
        worker.alive = false;
        const heldByIt = inAccount(worker, 'held');
        for (const conn of heldByIt) conns.delete(conn);
        ledger.workerExited(worker.account);
        if (heldByIt.length > 0) expectIdleIfEmpty(worker);
        if (workers.filter((w) => w.alive).length === 0) newWorker();
      }
      check(step, action);
    }

    // Everything left ends by a legal path.
    for (const conn of [...conns]) {
      const worker = conn.worker;
      if (conn.where === 'main') ledger.release(conn.peer);
      else if (conn.where === 'pending') {
        ledger.unassign(worker!.account);
        ledger.release(conn.peer);
      } else ledger.ended(worker!.account, 1, [conn.peer]);
      conns.delete(conn);
      if (worker) expectIdleIfEmpty(worker);
      check(STEPS, 'drain');
    }

    t.comment(
      `admitted ${counts.admitted}, refused ${counts.refused}, worker exits ${counts.exits}, deliveries after exit ${counts.lateDeliveries}, batched reports ${counts.batches}`,
    );
    t.same(failures, [], 'the ledger agreed with the model at every step');
    t.ok(
      counts.refused > 0 && counts.exits > 0 && counts.lateDeliveries > 0 && counts.batches > 0,
      'the sequence met refusals, exits, late deliveries and batches',
    );
    t.equal(ledger.open, 0, 'open is back to exactly 0');
    for (const peer of peers)
      t.equal(ledger.openFrom(peer), 0, `openFrom(${JSON.stringify(peer)}) is back to exactly 0`);
    const leftovers = workers
      .map((w) => shape(w.account))
      .filter((s) => s.pending !== 0 || s.held !== 0 || s.connections !== 0 || Object.keys(s.peers).length > 0);
    t.same(leftovers, [], 'every worker account is back to exactly 0');
    t.equal(
      workers.reduce((sum, w) => sum + w.account.total, 0),
      workers.reduce((sum, w) => sum + w.assigned, 0),
      'total counts every assignment',
    );
    // The limits hold exactly afterwards: maxConnectionsPerIp from one peer, then maxConnections in all.
    for (let i = 0; i < maxPerPeer; i++) t.equal(ledger.admit('10.0.0.1'), undefined);
    t.equal(ledger.admit('10.0.0.1'), 'maxConnectionsPerIp', `exactly ${maxPerPeer} admitted from one peer`);
    let more = 0;
    while (ledger.admit(`peer-${more}`) === undefined && more < 1000) more++;
    t.equal(maxPerPeer + more, maxConnections, `exactly ${maxConnections} admitted in all`);
  });
}

function sortPeers<T extends { peers: Record<string, number> }>(value: T): T {
  return { ...value, peers: Object.fromEntries(Object.entries(value.peers).sort(([a], [b]) => a.localeCompare(b))) };
}
