import t, { type Test } from 'tap';
import { fixture, startProxy, waitFor } from '../helpers.ts';
import { ask, type Client, clientsOnEveryWorker, next, record } from '../socketio.ts';

// Rooms span the workers: a room's members on every worker hear what is sent to it, and the
// utility methods (socketsJoin, socketsLeave, disconnectSockets) reach every worker's sockets.
async function twoWorkers(t: Test): Promise<{ byThread: Map<number, Client[]>; everyone: Client[] }> {
  const { port } = await startProxy(t, {
    workerURL: fixture('socketio/app.js'),
    workerCount: 2,
    balance: 'round-robin',
  });
  const byThread = await clientsOnEveryWorker(t, port, 2, 2);
  return { byThread, everyone: [...byThread.values()].flat() };
}

t.test("io.to(room).emit() reaches the room's members on both workers, and no one else", async (t) => {
  const { byThread, everyone } = await twoWorkers(t);
  // One member and one outsider on each worker.
  const members = [...byThread.values()].map(([member]) => member!);
  const outsiders = everyone.filter((client) => !members.includes(client));
  for (const member of members) await ask(member, 'join', 'blue');
  const heardByOutsiders = outsiders.map((client) => record(client, 'news'));

  for (const sender of [outsiders[0]!, members[1]!]) {
    const heard = members.map((member) => next(member, 'news'));
    await ask(sender, 'room-emit', 'blue', `to blue from ${sender.threadId}`);
    t.same(
      await Promise.all(heard),
      members.map(() => [`to blue from ${sender.threadId}`, sender.threadId]),
      `sent from worker ${sender.threadId}, it reached the members on both workers`,
    );
  }
  // Both sends are in: a message to everyone, sent after them, comes after them on each connection.
  const flushed = outsiders.map((client) => next(client, 'news'));
  await ask(members[0]!, 'emit', 'after');
  await Promise.all(flushed);
  t.same(
    heardByOutsiders.map((heard) => heard.map(([payload]) => payload)),
    outsiders.map(() => ['after']),
    'the outsiders heard nothing sent to the room',
  );
});

t.test('socketsJoin() and socketsLeave() reach the sockets of every worker', async (t) => {
  const { byThread, everyone } = await twoWorkers(t);
  const [first, second] = [...byThread.values()];
  const fetchRoom = () => ask<string[]>(first![0]!, 'fetch', 'green');

  await ask(second![0]!, 'sockets-join', 'green');
  const all = everyone.map((client) => client.socket.id).sort();
  const joined = await waitFor(async () => {
    const ids = await fetchRoom();
    return ids.length === all.length && ids;
  });
  t.same(joined.sort(), all, 'every socket of both workers joined');

  await ask(second![0]!, 'sockets-leave', 'green');
  await waitFor(async () => (await fetchRoom()).length === 0, { what: 'every socket left the room' });
  t.pass('every socket of both workers left');
});

t.test('disconnectSockets() disconnects the sockets of every worker', async (t) => {
  const { byThread } = await twoWorkers(t);
  const [first, second] = [...byThread.values()];
  // One socket in the room on each worker, and one out of it.
  const leaving = [first![0]!, second![0]!];
  const staying = [first![1]!, second![1]!];
  for (const client of leaving) await ask(client, 'join', 'red');
  const disconnected = leaving.map((client) => next(client, 'disconnect'));
  await ask(staying[0]!, 'disconnect-room', 'red');
  t.same(
    (await Promise.all(disconnected)).map(([reason]) => reason),
    ['io server disconnect', 'io server disconnect'],
    'the sockets in the room, on both workers, were disconnected',
  );
  t.same(
    staying.map((client) => client.socket.connected),
    [true, true],
    'the others stayed',
  );
});
