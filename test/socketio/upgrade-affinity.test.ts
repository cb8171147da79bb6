// Socket.IO's own flow from clients that each have an address of their own: the handshake is balanced,
// and the client's next connections (the upgrade to WebSocket, a second long-polling one) go to the
// worker that issued its session, so that no other worker relays them.
import http from 'node:http';
import net from 'node:net';
import t, { type Test } from 'tap';
import { fixture, startProxy } from '../helpers.ts';
import { transportsHere } from '../launcher.ts';
import type { ServiceProxy } from 'socketnaut';
import { type Chat, chat, everyoneHears, spread, upgraded } from '../socketio.ts';

const CLIENTS = 12;

/** As a browser's: connections kept alive, from one address. */
function keepAliveFrom(t: Test, address: string): string {
  const agent = new http.Agent({ keepAlive: true, localAddress: address });
  t.teardown(() => agent.destroy());
  return agent as unknown as string;
}

/** Every connection of its clients opens with a PROXY header naming `client`, as a load balancer's would. */
function agentBehindBalancer(t: Test, client: string): string {
  const agent = new http.Agent({ keepAlive: true });
  agent.createConnection = (options: net.NetConnectOpts) => {
    const socket = net.connect(options);
    socket.write(`PROXY TCP4 ${client} 127.0.0.1 40000 80\r\n`);
    return socket;
  };
  t.teardown(() => agent.destroy());
  return agent as unknown as string;
}

// Reuseport's workers accept for themselves: the kernel, not the main thread, picks.
for (const transport of await transportsHere(['handoff', 'pipe'] as const)) {
  t.test(`${transport}: every connection of a client reaches its session's worker`, async (t) => {
    const { proxy, port } = await startProxy(t, { workerURL: fixture('socketio/app.js'), workerCount: 2, transport });
    await clientsFollowTheirSessions(t, proxy, port, (i) => keepAliveFrom(t, `127.0.3.${10 + i}`));
  });
}

// Where the main thread reads the PROXY header, it knows the client before it picks a worker.
for (const transport of await transportsHere(['pipe'] as const)) {
  t.test(`${transport}: behind a load balancer that sends the PROXY protocol`, async (t) => {
    const { proxy, port } = await startProxy(t, {
      workerURL: fixture('socketio/app.js'),
      workerCount: 2,
      transport,
      proxyProtocol: true,
    });
    await clientsFollowTheirSessions(t, proxy, port, (i) => agentBehindBalancer(t, `203.0.113.${10 + i}`));
  });
}

async function clientsFollowTheirSessions(
  t: Test,
  proxy: ServiceProxy,
  port: number,
  agentOf: (i: number) => string,
): Promise<void> {
  const totals = async (): Promise<Map<number, number>> =>
    new Map((await proxy.stats()).workers.map((w) => [w.threadId, w.totalConnections]));
  const chats: Chat[] = [];
  // One at a time, so that the connections each worker was given are this client's alone.
  for (let i = 0; i < CLIENTS; i++) {
    const before = await totals();
    const client = await chat(t, port, { agent: agentOf(i) });
    await upgraded([client]);
    const after = await totals();
    const given = [...after].map(([thread, total]) => [thread, total - (before.get(thread) ?? 0)]);
    const elsewhere = given.filter(([thread, count]) => thread !== client.threadId && count! > 0);
    t.same(elsewhere, [], `client ${i}: no connection of it went to another worker than ${client.threadId}`);
    t.ok((after.get(client.threadId) ?? 0) - (before.get(client.threadId) ?? 0) >= 2, 'its handshake and upgrade');
    chats.push(client);
  }
  t.equal(spread(chats).size, 2, 'the sessions are on both workers');
  await everyoneHears(t, chats, chats[0]!);
}
