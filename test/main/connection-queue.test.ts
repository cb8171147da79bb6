import { EventEmitter, once } from 'node:events';
import type net from 'node:net';
import t, { type Test } from 'tap';
import type { ConnectionQueue as Queue, QueueEvents } from '../../lib/main/connection-queue.ts';
import { withDeadline } from '../helpers.ts';

// Internal: the connections waiting for a worker, tested with stand-in sockets.
const { ConnectionQueue } = (await import(
  new URL('../../dist/lib/main/connection-queue.js', import.meta.url).href
)) as {
  ConnectionQueue: typeof Queue;
};

// The queue only listens for 'close' on a socket: an EventEmitter stands in for one.
function fakeSocket(name: string): net.Socket {
  const socket = new EventEmitter() as EventEmitter & { name: string };
  socket.name = name;
  return socket as unknown as net.Socket;
}

/**
 * Waits for `event`, failing after `ms`. The queue's own timers are unref'd, so the deadline's ref'd
 * (and always cleared) timer is also what keeps the process alive meanwhile.
 */
function within<T extends unknown[]>(emitter: EventEmitter, event: string, ms = 5000): Promise<T> {
  return withDeadline(once(emitter, event) as Promise<T>, ms, `'${event}'`);
}

const nameOf = (socket: net.Socket): string => (socket as unknown as { name: string }).name;

/**
 * The oldest waiting connection, taken out through takeAll(), which hands over every one, oldest
 * first: the others are queued again, in their order.
 */
function takeOldest(queue: Queue): net.Socket | undefined {
  let oldest: net.Socket | undefined;
  queue.takeAll((socket) => {
    if (oldest === undefined) oldest = socket;
    else queue.push(socket);
  });
  return oldest;
}

interface Recorded extends QueueEvents {
  expiredSockets: net.Socket[];
  abandonedSockets: net.Socket[];
  emitter: EventEmitter;
}

function recorder(): Recorded {
  const emitter = new EventEmitter();
  const recorded: Recorded = {
    expiredSockets: [],
    abandonedSockets: [],
    emitter,
    expired: (socket) => {
      recorded.expiredSockets.push(socket);
      emitter.emit('expired', socket);
    },
    abandoned: (socket) => {
      recorded.abandonedSockets.push(socket);
      emitter.emit('abandoned', socket);
    },
  };
  return recorded;
}

// A timeout no other code in the process uses, so that the queue's timers can be told apart.
const LONG = 987_654;

/** Watches the timers made with `ms` from now until the test ends: which are live, and whether they are unref'd. */
function watchTimers(t: Test, ms: number): { live: Set<NodeJS.Timeout>; made: NodeJS.Timeout[] } {
  const realSet = globalThis.setTimeout;
  const realClear = globalThis.clearTimeout;
  const live = new Set<NodeJS.Timeout>();
  const made: NodeJS.Timeout[] = [];
  globalThis.setTimeout = ((fn: (...args: unknown[]) => void, delay?: number, ...args: unknown[]) => {
    if (delay !== ms) return realSet(fn, delay, ...args);
    const timer: NodeJS.Timeout = realSet(
      (...fnArgs: unknown[]) => {
        live.delete(timer);
        fn(...fnArgs);
      },
      delay,
      ...args,
    );
    live.add(timer);
    made.push(timer);
    return timer;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((timer?: NodeJS.Timeout | string | number) => {
    if (timer && typeof timer === 'object') live.delete(timer);
    realClear(timer);
  }) as typeof clearTimeout;
  t.teardown(() => {
    globalThis.setTimeout = realSet;
    globalThis.clearTimeout = realClear;
    for (const timer of live) realClear(timer);
  });
  return { live, made };
}

t.test('sockets leave in the order they came', async (t) => {
  const events = recorder();
  const queue = new ConnectionQueue(10, LONG, events);
  const sockets = ['a', 'b', 'c', 'd'].map(fakeSocket);
  for (const socket of sockets) t.equal(queue.push(socket), true);
  t.teardown(() => queue.takeAll(() => {}));
  t.equal(queue.length, 4);
  const out: string[] = [];
  for (let socket = takeOldest(queue); socket; socket = takeOldest(queue)) out.push(nameOf(socket));
  t.same(out, ['a', 'b', 'c', 'd']);
  t.equal(queue.length, 0);
  t.equal(takeOldest(queue), undefined, 'an empty queue gives nothing');
  // A socket that leaves and comes back waits behind those already there.
  queue.push(sockets[0]!);
  queue.push(sockets[1]!);
  takeOldest(queue);
  queue.push(sockets[0]!);
  t.same(
    [takeOldest(queue), takeOldest(queue)].map((s) => s && nameOf(s)),
    ['b', 'a'],
  );
  t.same(events.expiredSockets, []);
  t.same(events.abandonedSockets, []);
});

t.test('the limit bounds the queue, and a socket turned away is not touched', async (t) => {
  const timers = watchTimers(t, LONG);
  const queue = new ConnectionQueue(2, LONG, recorder());
  t.teardown(() => queue.takeAll(() => {}));
  t.equal(queue.limit, 2);
  const [a, b, c] = ['a', 'b', 'c'].map(fakeSocket);
  t.equal(queue.push(a!), true);
  t.equal(queue.push(b!), true);
  t.equal(queue.push(c!), false, 'full');
  t.equal(queue.length, 2);
  t.equal(c!.listenerCount('close'), 0, 'no listener on the refused socket');
  t.equal(timers.made.length, 2, 'no timer for it either');
  takeOldest(queue);
  t.equal(queue.push(c!), true, 'room again once one left');
  t.same(
    [takeOldest(queue), takeOldest(queue)].map((s) => s && nameOf(s)),
    ['b', 'c'],
  );

  const closed = new ConnectionQueue(0, LONG, recorder());
  t.equal(closed.push(fakeSocket('x')), false, 'a limit of 0 queues nothing');
  t.equal(closed.length, 0);
});

t.test('a socket that waits past queueTimeout expires and leaves the queue', async (t) => {
  const TIMEOUT = 40;
  const timers = watchTimers(t, TIMEOUT);
  const events = recorder();
  const queue = new ConnectionQueue(10, TIMEOUT, events);
  t.teardown(() => queue.takeAll(() => {}));
  const socket = fakeSocket('late');
  const pushedAt = performance.now();
  queue.push(socket);
  t.equal(timers.made.length, 1);
  t.equal(timers.made[0]!.hasRef(), false, "the queue's timer does not keep the process alive");
  t.equal(socket.listenerCount('close'), 1, 'the queue listens for the client leaving');
  const [expired] = await within<[net.Socket]>(events.emitter, 'expired');
  const waited = performance.now() - pushedAt;
  t.equal(expired, socket, 'the waiting socket expired');
  t.ok(waited >= TIMEOUT - 1, `after queueTimeout (${waited.toFixed(1)} ms)`);
  t.equal(queue.length, 0, 'it left the queue');
  t.equal(socket.listenerCount('close'), 0, 'its close listener is gone');
  t.same(events.abandonedSockets, [], 'expired, not abandoned');
  socket.emit('close');
  t.same(events.abandonedSockets, [], 'a close after it expired is not reported');
  t.equal(events.expiredSockets.length, 1, 'expired once');
});

t.test('each socket expires on its own clock', async (t) => {
  const TIMEOUT = 30;
  const events = recorder();
  const queue = new ConnectionQueue(10, TIMEOUT, events);
  t.teardown(() => queue.takeAll(() => {}));
  const first = fakeSocket('first');
  const second = fakeSocket('second');
  queue.push(first);
  await within(events.emitter, 'expired');
  queue.push(second);
  t.same(events.expiredSockets, [first]);
  t.equal(queue.length, 1, 'the later socket still waits');
  const [expired] = await within<[net.Socket]>(events.emitter, 'expired');
  t.equal(expired, second);
  t.equal(queue.length, 0);
});

t.test('a socket that closes while waiting is abandoned, and its timer is cleared', async (t) => {
  const timers = watchTimers(t, LONG);
  const events = recorder();
  const queue = new ConnectionQueue(10, LONG, events);
  t.teardown(() => queue.takeAll(() => {}));
  const [a, b, c] = ['a', 'b', 'c'].map(fakeSocket);
  queue.push(a!);
  queue.push(b!);
  queue.push(c!);
  t.equal(timers.live.size, 3);
  b!.emit('close');
  t.same(events.abandonedSockets, [b], 'reported once, with the socket');
  t.equal(queue.length, 2);
  t.equal(b!.listenerCount('close'), 0, 'its listener is gone');
  t.equal(timers.live.size, 2, 'its timer is cleared');
  b!.emit('close');
  t.same(events.abandonedSockets, [b], 'a second close is not reported again');
  t.same(
    [takeOldest(queue), takeOldest(queue)].map((s) => s && nameOf(s)),
    ['a', 'c'],
    'the others keep their order',
  );
  t.equal(timers.live.size, 0, 'taking them out clears their timers too');
  t.equal(a!.listenerCount('close') + c!.listenerCount('close'), 0, 'and the listeners');
  t.same(events.expiredSockets, []);
});

t.test('takeAll hands over every waiting socket once, oldest first, and clears what it held', async (t) => {
  const timers = watchTimers(t, LONG);
  const events = recorder();
  const queue = new ConnectionQueue(10, LONG, events);
  const sockets = ['a', 'b', 'c'].map(fakeSocket);
  for (const socket of sockets) queue.push(socket);
  const taken: string[] = [];
  queue.takeAll((socket) => {
    taken.push(nameOf(socket));
    t.equal(socket.listenerCount('close'), 0, `${nameOf(socket)} is no longer watched when handed over`);
  });
  t.same(taken, ['a', 'b', 'c']);
  t.equal(queue.length, 0);
  t.equal(timers.live.size, 0, 'no timer left');
  for (const socket of sockets) socket.emit('close');
  t.same(events.abandonedSockets, [], 'sockets handed over are not reported abandoned');
  queue.takeAll(() => t.fail('nothing to take from an empty queue'));
});

t.test(
  'a socket queued again during takeAll waits for the next call: a worker refusing everything cannot loop',
  async (t) => {
    const timers = watchTimers(t, LONG);
    const events = recorder();
    const queue = new ConnectionQueue(10, LONG, events);
    t.teardown(() => queue.takeAll(() => {}));
    const sockets = ['a', 'b', 'c'].map(fakeSocket);
    for (const socket of sockets) queue.push(socket);
    const arrival = fakeSocket('new');
    const offers = new Map<string, number>();
    let calls = 0;
    queue.takeAll((socket) => {
      if (++calls > 100) throw new Error('takeAll does not end');
      offers.set(nameOf(socket), (offers.get(nameOf(socket)) ?? 0) + 1);
      // Refused: back in the queue. And a new connection arrives meanwhile.
      t.equal(queue.push(socket), true);
      if (calls === 1) queue.push(arrival);
    });
    t.same(Object.fromEntries(offers), { a: 1, b: 1, c: 1 }, 'each handed over exactly once');
    t.equal(queue.length, 4, 'all back, with the new arrival');
    t.equal(timers.live.size, 4, 'one live timer per waiting socket, none leaked');
    for (const socket of [...sockets, arrival])
      t.equal(socket.listenerCount('close'), 1, `one close listener on ${nameOf(socket)}`);
    const next: string[] = [];
    queue.takeAll((socket) => next.push(nameOf(socket)));
    t.same(next, ['a', 'new', 'b', 'c'], 'the next call takes them, in the order they were queued');
    t.equal(timers.live.size, 0);
  },
);

t.test('takeAll stops early when sockets leave the queue during the call', async (t) => {
  const events = recorder();
  const queue = new ConnectionQueue(10, LONG, events);
  t.teardown(() => queue.takeAll(() => {}));
  const [a, b, c] = ['a', 'b', 'c'].map(fakeSocket);
  queue.push(a!);
  queue.push(b!);
  queue.push(c!);
  const taken: net.Socket[] = [];
  queue.takeAll((socket) => {
    taken.push(socket);
    // Both clients still waiting go away while the first one is dispatched.
    b!.emit('close');
    c!.emit('close');
  });
  t.same(taken, [a], 'only the one still waiting was handed over');
  t.same(events.abandonedSockets, [b, c]);
  t.equal(queue.length, 0);
});

// The dispatcher never meets this: a socket's 'close' comes on a later tick, after takeAll returned.
// takeAll counts the sockets waiting when it starts, not which of them it has handed over: when one
// leaves the queue during the call, a socket queued again is handed over a second time.
t.test(
  'a socket queued again during takeAll is not handed over again when another leaves the queue meanwhile',
  async (t) => {
    const events = recorder();
    const queue = new ConnectionQueue(10, LONG, events);
    t.teardown(() => queue.takeAll(() => {}));
    const [a, b, c] = ['a', 'b', 'c'].map(fakeSocket);
    queue.push(a!);
    queue.push(b!);
    queue.push(c!);
    const offers: string[] = [];
    queue.takeAll((socket) => {
      offers.push(nameOf(socket));
      if (socket === a) c!.emit('close');
      queue.push(socket);
    });
    t.same(offers, ['a', 'b'], 'a and b offered once each');
  },
);
