import t from 'tap';
import { fixture, startProxy } from '../helpers.ts';
import { ask, clientsOnEveryWorker } from '../socketio.ts';

// The utility methods that wait for every worker's answer: fetchSockets() and serverSideEmit() with
// an acknowledgement.
t.test("fetchSockets() counts every worker's sockets, asked from either worker", async (t) => {
  const { port } = await startProxy(t, {
    workerURL: fixture('socketio/app.js'),
    workerCount: 2,
    balance: 'round-robin',
  });
  const byThread = await clientsOnEveryWorker(t, port, 2, 3);
  const all = [...byThread.values()]
    .flat()
    .map((client) => client.socket.id)
    .sort();
  for (const [threadId, [asker]] of byThread) {
    t.same((await ask<string[]>(asker!, 'fetch', null)).sort(), all, `worker ${threadId} counted all ${all.length}`);
  }
});

t.test('serverSideEmit() with an acknowledgement gets the answer of every other worker', async (t) => {
  const { port } = await startProxy(t, {
    workerURL: fixture('socketio/app.js'),
    workerCount: 3,
    balance: 'round-robin',
  });
  const byThread = await clientsOnEveryWorker(t, port, 3, 1);
  const threads = [...byThread.keys()].sort((a, b) => a - b);
  for (const [threadId, [asker]] of byThread) {
    const answers = await ask<{ threadId: number; from: number }[]>(asker!, 'server-side-emit');
    t.same(
      answers.sort((a, b) => a.threadId - b.threadId),
      threads.filter((other) => other !== threadId).map((other) => ({ threadId: other, from: threadId })),
      `worker ${threadId} heard from the two others`,
    );
  }
});
