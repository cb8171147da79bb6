import t from 'tap';
import { fixture, startProxy } from '../helpers.ts';
import { ask, clientsOnEveryWorker, next } from '../socketio.ts';

// An app that imports nothing of socketnaut, on two workers: what one worker's server broadcasts
// reaches the clients of both.
t.test('io.emit() and socket.broadcast from each worker reach the clients of both', async (t) => {
  const { port } = await startProxy(t, {
    workerURL: fixture('socketio/app.js'),
    workerCount: 2,
    balance: 'round-robin',
  });
  const byThread = await clientsOnEveryWorker(t, port, 2, 2);
  const everyone = [...byThread.values()].flat();
  t.equal(new Set(everyone.map((client) => client.threadId)).size, 2, 'the clients are on two workers');

  for (const [threadId, [sender]] of byThread) {
    const heard = everyone.map((client) => next(client, 'news'));
    await ask(sender!, 'emit', `io.emit from ${threadId}`);
    const received = await Promise.all(heard);
    t.same(
      received,
      everyone.map(() => [`io.emit from ${threadId}`, threadId]),
      `io.emit() from worker ${threadId} reached all ${everyone.length} clients`,
    );
  }

  for (const [threadId, [sender]] of byThread) {
    const others = everyone.filter((client) => client !== sender);
    const heard = others.map((client) => next(client, 'news'));
    let own = false;
    sender!.socket.once('news', () => {
      own = true;
    });
    await ask(sender!, 'broadcast', `broadcast from ${threadId}`);
    t.same(
      await Promise.all(heard),
      others.map(() => [`broadcast from ${threadId}`, threadId]),
    );
    t.equal(own, false, `socket.broadcast from worker ${threadId} reached every other client, not its sender`);
    sender!.socket.off('news');
  }
});

t.test('binary data reaches the clients of the other worker intact', async (t) => {
  const { port } = await startProxy(t, {
    workerURL: fixture('socketio/app.js'),
    workerCount: 2,
    balance: 'round-robin',
  });
  const byThread = await clientsOnEveryWorker(t, port, 2, 1);
  const [[, [a]], [, [b]]] = [...byThread];
  const payload = {
    small: Buffer.from([1, 2, 3]),
    large: Buffer.alloc(100_000, 7),
    nested: [{ bytes: Buffer.from('é') }],
  };
  const heard = next(b!, 'news');
  await ask(a!, 'emit', payload);
  const [received] = (await heard) as [typeof payload];
  t.same(Buffer.from(received.small), Buffer.from([1, 2, 3]), 'a small Buffer');
  t.equal(received.large.byteLength, 100_000, 'a large Buffer, whole');
  t.ok(Buffer.from(received.large).every((byte) => byte === 7));
  t.same(Buffer.from(received.nested[0]!.bytes).toString(), 'é', 'a Buffer inside an array of objects');
});

t.test("a broadcast with an acknowledgement gets every client's answer, on both workers", async (t) => {
  const { port } = await startProxy(t, {
    workerURL: fixture('socketio/app.js'),
    workerCount: 2,
    balance: 'round-robin',
  });
  const everyone = [...(await clientsOnEveryWorker(t, port, 2, 2)).values()].flat();
  for (const client of everyone) client.socket.on('question', (from, reply) => reply(client.socket.id));
  for (const asker of [everyone[0]!, everyone.at(-1)!]) {
    const answers = await ask<string[]>(asker, 'ask-everyone');
    t.same(answers.sort(), everyone.map((client) => client.socket.id).sort(), `asked from worker ${asker.threadId}`);
  }
});
