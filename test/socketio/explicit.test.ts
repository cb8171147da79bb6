import t from 'tap';
import { Server } from 'socket.io';
import { createAdapter } from 'socketnaut/socket.io';
import { fixture, startProxy } from '../helpers.ts';
import { ask, clientsOnEveryWorker, next } from '../socketio.ts';

// The adapter as an app sets it itself, from socketnaut/socket.io.
t.test("createAdapter() fits Socket.IO's adapter option and io.adapter()", async (t) => {
  const io = new Server({ adapter: createAdapter() });
  io.adapter(createAdapter({ key: 'other', heartbeatInterval: 500 }));
  t.equal(typeof io.of('/').adapter.serverCount, 'function');
  io.of('/').adapter.close();
});

t.test('an app that sets the adapter itself broadcasts to both workers', async (t) => {
  const { port } = await startProxy(t, {
    workerURL: fixture('socketio/explicit.js'),
    workerCount: 2,
    balance: 'round-robin',
  });
  const [[, [a]], [, [b]]] = [...(await clientsOnEveryWorker(t, port, 2, 1))];
  const heard = next(b!, 'news');
  await ask(a!, 'emit', 'set by the app');
  t.same(await heard, ['set by the app', a!.threadId]);
});

t.test('the workers of two proxies in one process do not mix', async (t) => {
  const started = await Promise.all(
    [1, 2].map(() => startProxy(t, { workerURL: fixture('socketio/explicit.js'), workerCount: 1 })),
  );
  const [[[, [first]]], [[, [second]]]] = await Promise.all(
    started.map(async ({ port }) => [...(await clientsOnEveryWorker(t, port, 1, 1))]),
  );
  t.same(await ask(first!, 'fetch', null), [first!.socket.id], "one proxy's worker counts only its own sockets");
  let reached = false;
  second!.socket.on('news', () => {
    reached = true;
  });
  const own = next(first!, 'news');
  await ask(first!, 'emit', 'first only');
  await own;
  t.same(await ask(second!, 'fetch', null), [second!.socket.id]);
  t.equal(reached, false, "a broadcast did not reach the other proxy's client");
});
