import { once } from 'node:events';
import net from 'node:net';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import t, { type Test } from 'tap';
import { HandoffTransport } from '../dist/lib/transports/handoff.js';
import type { DispatchOutcome, DispatchTarget } from '../dist/lib/transports/index.js';

/** `count` freshly accepted, unread sockets, as the proxy's server hands them over. */
async function accept(t: Test, count: number): Promise<net.Socket[]> {
  const server = net.createServer({ pauseOnConnect: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const accepted: net.Socket[] = [];
  const all = new Promise<void>((resolve) => server.on('connection', (socket: net.Socket) => accepted.push(socket) === count && resolve()));
  const { port } = server.address() as net.AddressInfo;
  const clients = Array.from({ length: count }, () => net.connect(port, '127.0.0.1').on('error', () => {}));
  t.teardown(() => clients.forEach((client) => client.destroy()));
  await all;
  t.teardown(() => accepted.forEach((socket) => socket.destroy()));
  return accepted;
}

function outcomes(): DispatchOutcome & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    refused: (_target, socket) => void log.push(`refused ${socket.remotePort}`),
    dropped: (_target, socket) => void log.push(`dropped ${socket.remotePort}`),
  };
}

/** A worker's end of the channel, as the main thread sees it, and what arrives at the other end. */
function worker(t: Test, state: DispatchTarget['state'] = 'ready'): DispatchTarget & { inbox: MessagePort } {
  const { port1, port2 } = new MessageChannel();
  t.teardown(() => port1.close());
  return { port: port1, pipePath: undefined, state, inbox: port2 };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const settings = { token: 'test', sendPeer: true };

t.test('the sockets dispatched in one turn reach their worker in one message', async (t) => {
  const sockets = await accept(t, 5);
  const target = worker(t);
  const outcome = outcomes();
  const transport = new HandoffTransport(settings);
  let messages = 0;
  target.inbox.on('message', () => messages++);
  const arrived = once(target.inbox, 'message');
  const peers = sockets.map((socket) => socket.remoteAddress);
  for (const socket of sockets) transport.dispatch(target, socket, outcome);
  t.equal(messages, 0, 'nothing is sent before the turn ends');
  const [message] = (await arrived) as [{ type: string; sockets: net.Socket[]; peers: string[] }];
  await turn();
  t.equal(messages, 1, 'one message');
  t.equal(message.type, 'connections');
  t.equal(message.sockets.length, 5, 'with all five sockets');
  t.same(message.peers, peers, "and each one's peer address, in order");
  t.ok(sockets.every((socket) => socket.destroyed), "the main thread's side of each moved socket is closed");
  t.same(outcome.log, [], 'none refused or dropped');
  message.sockets.forEach((socket) => socket.destroy());
});

t.test('sockets batched for a worker that exited before the turn ended are refused, not lost', async (t) => {
  const sockets = await accept(t, 3);
  const target = worker(t);
  const outcome = outcomes();
  const transport = new HandoffTransport(settings);
  let messages = 0;
  target.inbox.on('message', () => messages++);
  for (const socket of sockets) transport.dispatch(target, socket, outcome);
  (target as { state: DispatchTarget['state'] }).state = 'exited';
  await turn();
  await turn();
  t.equal(messages, 0, 'nothing was sent to the exited worker');
  t.same(outcome.log, sockets.map((socket) => `refused ${socket.remotePort}`), 'each socket was refused, to go to another worker');
  t.ok(sockets.every((socket) => !socket.destroyed), 'and is still open');
});

t.test('a socket that closed while it waited is dropped, and the others still move', async (t) => {
  const sockets = await accept(t, 3);
  const target = worker(t);
  const outcome = outcomes();
  const transport = new HandoffTransport(settings);
  const arrived = once(target.inbox, 'message');
  for (const socket of sockets) transport.dispatch(target, socket, outcome);
  const closedPort = sockets[1]!.remotePort;
  sockets[1]!.destroy();
  const [message] = (await arrived) as [{ sockets: net.Socket[] }];
  t.equal(message.sockets.length, 2, 'the two open sockets moved');
  t.same(outcome.log, [`dropped ${closedPort}`], 'the closed one was dropped');
  message.sockets.forEach((socket) => socket.destroy());
});
