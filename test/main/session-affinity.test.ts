import t from 'tap';

// Internal: which worker a client's new connections follow once it has been given a session.
const { SessionAffinity, SESSION_AFFINITY_MS, SESSION_AFFINITY_CONNECTIONS } = (await import(
  new URL('../../dist/lib/main/session-affinity.js', import.meta.url).href
)) as typeof import('../../lib/main/session-affinity.ts');

function clock(): { now: () => number; advance: (ms: number) => void } {
  let at = 1000;
  return {
    now: () => at,
    advance: (ms) => {
      at += ms;
    },
  };
}

t.test("a client's new connections follow the worker that issued its session", async (t) => {
  const time = clock();
  const affinity = new SessionAffinity(time.now);
  t.equal(affinity.follow('127.0.0.5'), undefined, 'no session, no preference');
  affinity.issued('127.0.0.5', 3);
  t.equal(affinity.follow('127.0.0.5'), 3);
  t.equal(affinity.follow('::ffff:127.0.0.5'), 3, 'the mapped form of the address is the same client');
  t.equal(affinity.follow('127.0.0.6'), undefined, 'another address is balanced');
  t.equal(affinity.follow(undefined), undefined, 'a connection with no address is balanced');
  time.advance(SESSION_AFFINITY_MS - 1);
  t.equal(affinity.follow('127.0.0.5'), 3, 'until the time is up');
  time.advance(1);
  t.equal(affinity.follow('127.0.0.5'), undefined, 'then balanced again');
});

t.test('a session is followed by a few connections, not more', async (t) => {
  const affinity = new SessionAffinity(clock().now);
  affinity.issued('127.0.0.5', 3);
  const sent = Array.from({ length: SESSION_AFFINITY_CONNECTIONS + 3 }, () => affinity.follow('127.0.0.5'));
  t.same(
    sent,
    [...Array<number>(SESSION_AFFINITY_CONNECTIONS).fill(3), undefined, undefined, undefined],
    `${SESSION_AFFINITY_CONNECTIONS} connections follow it, then the balancer picks`,
  );
  affinity.issued('127.0.0.6', 1);
  t.equal(affinity.follow('127.0.0.6'), 1, 'each address counts its own');
});

t.test('an address that set up two sessions lately is not followed', async (t) => {
  const time = clock();
  const affinity = new SessionAffinity(time.now);
  affinity.issued('::ffff:10.1.2.3', 1);
  time.advance(500);
  affinity.issued('10.1.2.3', 2);
  t.equal(affinity.follow('10.1.2.3'), undefined, 'clients behind one NAT are balanced, not sent to one worker');
  time.advance(SESSION_AFFINITY_MS - 1);
  affinity.issued('10.1.2.3', 1);
  t.equal(affinity.follow('10.1.2.3'), undefined, 'each new session keeps it shared');
  time.advance(SESSION_AFFINITY_MS);
  affinity.issued('10.1.2.3', 2);
  t.equal(affinity.follow('10.1.2.3'), 2, 'a session long after the last is followed again');
});

t.test('what is out of date is let go as new sessions come', async (t) => {
  const time = clock();
  const affinity = new SessionAffinity(time.now);
  for (let i = 0; i < 100; i++) affinity.issued(`127.1.0.${i}`, i % 2);
  t.equal(affinity.size, 100);
  time.advance(SESSION_AFFINITY_MS / 2);
  affinity.issued('127.1.0.7', 0);
  time.advance(SESSION_AFFINITY_MS / 2);
  affinity.issued('127.2.0.1', 1);
  t.equal(affinity.size, 2, 'the one issued again within the time kept, and the new one');
  t.equal(affinity.follow('127.1.0.8'), undefined);
  t.equal(affinity.follow('127.2.0.1'), 1);
});
