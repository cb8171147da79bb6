import t from 'tap';
import { fixture, startProxy, waitFor, withDeadline } from '../helpers.ts';
import { ask, clientsOnEveryWorker, connect, next } from '../socketio.ts';

// A worker that leaves, even without a word, does not hold up the others: their broadcasts still
// reach their own clients, and what waits for every worker's answer (fetchSockets, serverSideEmit
// with an acknowledgement) completes, well within its own 5 s timeout. The worker that replaces it
// is counted at once.
const { HEARTBEAT_TIMEOUT_MS } = (await import(
  new URL('../../dist/lib/socketio/adapter.js', import.meta.url).href
)) as {
  HEARTBEAT_TIMEOUT_MS: number;
};
/** The heartbeat timeout, and the adapter's check for it once a second, with room for a slow machine. */
const GIVEN_UP_WITHIN_MS = HEARTBEAT_TIMEOUT_MS + 1000 + 500;

function ids(clients: { socket: { id?: string } }[]): string[] {
  return clients.map((client) => client.socket.id!).sort();
}

t.test('a worker stopped by worker.terminate() is given up within the heartbeat timeout', async (t) => {
  const { proxy, port } = await startProxy(t, {
    workerURL: fixture('socketio/app.js'),
    workerCount: 2,
    balance: 'round-robin',
  });
  const [[stays, staying], [leaves, leaving]] = [...(await clientsOnEveryWorker(t, port, 2, 2))];
  const gone = leaving!.map((client) => next(client, 'disconnect'));
  await proxy.agents.find((agent) => agent.threadId === leaves)!.worker.terminate();
  await Promise.all(gone);

  const started = Date.now();
  const [fetched, answers] = await withDeadline(
    Promise.all([ask<string[]>(staying![0]!, 'fetch', null), ask<unknown[]>(staying![1]!, 'server-side-emit')]),
    GIVEN_UP_WITHIN_MS,
    'fetchSockets and serverSideEmit after a worker left',
  );
  t.same(fetched.sort(), ids(staying!), `fetchSockets() on worker ${stays} answered with its own sockets`);
  t.ok(Array.isArray(answers), 'serverSideEmit() was acknowledged');
  t.comment(`answered after ${Date.now() - started} ms`);

  const heard = staying!.map((client) => next(client, 'news'));
  await ask(staying![0]!, 'emit', 'still here');
  t.equal((await Promise.all(heard)).length, 2, "a broadcast reached the worker's own clients");

  // The successor joins as it starts: a client on it is counted at once.
  const successor = await waitFor(() =>
    proxy.agents.find((agent) => agent.threadId !== stays && agent.threadId !== leaves),
  );
  let newcomer = await connect(t, port);
  for (let i = 0; i < 8 && newcomer.threadId !== successor.threadId; i++) newcomer = await connect(t, port);
  t.equal(newcomer.threadId, successor.threadId, 'a client reached the successor');
  t.ok(
    (await ask<string[]>(staying![0]!, 'fetch', null)).includes(newcomer.socket.id!),
    "the successor's socket is counted",
  );
});

t.test('a worker that crashes says so as it ends: the others do not wait for it', async (t) => {
  const { port } = await startProxy(t, {
    workerURL: fixture('socketio/app.js'),
    workerCount: 2,
    balance: 'round-robin',
  });
  const [[stays, staying], [, leaving]] = [...(await clientsOnEveryWorker(t, port, 2, 2))];
  t.same(
    (await ask<string[]>(staying![0]!, 'fetch', null)).sort(),
    ids([...staying!, ...leaving!]),
    'before, fetchSockets() counts the sockets of both',
  );
  const gone = next(leaving![0]!, 'disconnect');
  leaving![0]!.socket.emit('crash');
  await gone;
  const started = Date.now();
  const fetched = await ask<string[]>(staying![0]!, 'fetch', null);
  const elapsed = Date.now() - started;
  t.same(fetched.sort(), ids(staying!), `fetchSockets() on worker ${stays} answered with its own sockets`);
  t.ok(elapsed < HEARTBEAT_TIMEOUT_MS, `without waiting for the heartbeat timeout (${elapsed} ms)`);
});
