import http from 'node:http';
import t, { type Test } from 'tap';
import { io, type Socket } from 'socket.io-client';
import { examplePath } from '../examples.ts';
import { waitFor } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';
import { freePort, skipUnlessInstalled, startHaproxy, startRedis } from '../services.ts';
import { skipUnlessSupported } from '../transport-support.ts';

const app = examplePath('socketio-redis/app.js');
const hostArgs = [app, '--workers', '2', '--balance', 'ip-hash', '--proxy-protocol'];

// 'auto' reads the header on the main thread, before choosing a worker (the pipe transport);
// 'handoff' reads it in the worker, and ip-hash then keeps every connection from HAProxy on one worker.
const variants = [
  { transport: 'auto', expected: 'pipe', skip: false },
  { transport: 'handoff', expected: 'handoff', skip: skipUnlessSupported('handoff') },
] as const;

interface Welcome {
  id: string;
  address: string;
  server: string;
}

interface ChatMessage {
  from: string;
  text: string;
  server: string;
}

// One frontend per host, so that where a client lands is known. Host B is host A's backup: once the
// health check finds A gone, A's clients reconnect to B. As configured in production, the checks
// send the PROXY header too (HAProxy's default with send-proxy-v2), then close with a reset.
function haproxyConfig(frontA: number, frontB: number, hostA: number, hostB: number): string {
  return `
defaults
  mode tcp
  timeout connect 1s
  timeout client 60s
  timeout server 60s
  retries 3
  option redispatch

frontend front-a
  bind 127.0.0.1:${frontA}
  default_backend host-a

backend host-a
  server a 127.0.0.1:${hostA} send-proxy-v2 check inter 200ms fall 1 rise 1
  server b 127.0.0.1:${hostB} send-proxy-v2 check inter 200ms fall 1 rise 1 backup

frontend front-b
  bind 127.0.0.1:${frontB}
  default_backend host-b

backend host-b
  server b 127.0.0.1:${hostB} send-proxy-v2 check inter 200ms fall 1 rise 1
`;
}

interface ChatClient {
  socket: Socket;
  welcomes: Welcome[];
  messages: ChatMessage[];
  disconnects: string[];
}

function connectClient(t: Test, port: number, address: string): ChatClient {
  const socket = io(`http://127.0.0.1:${port}`, {
    agent: new http.Agent({ localAddress: address, keepAlive: false }) as never,
    forceNew: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
    timeout: 3000,
  });
  t.teardown(() => socket.close());
  const client: ChatClient = { socket, welcomes: [], messages: [], disconnects: [] };
  socket.on('welcome', (welcome: Welcome) => client.welcomes.push(welcome));
  socket.on('chat message', (message: ChatMessage) => client.messages.push(message));
  socket.on('disconnect', (reason) => client.disconnects.push(reason));
  return client;
}

async function say(client: ChatClient, text: string): Promise<void> {
  const ack = (await client.socket.timeout(5000).emitWithAck('chat message', text)) as { ok: boolean };
  if (!ack.ok) throw new Error(`'${text}' was refused: ${JSON.stringify(ack)}`);
}

for (const { transport, expected, skip } of variants) {
  const name = `transport ${transport}: two hosts behind HAProxy share one Redis, and a host that dies hands its clients over`;
  t.test(name, { skip: skip || skipUnlessInstalled('redis', 'haproxy') }, async (t) => {
    const redis = await startRedis(t);
    const env = { REDIS_URL: redis.url };
    const args = [...hostArgs, '--transport', transport];
    const [hostA, hostB] = await Promise.all([startLauncher(t, args, env), startLauncher(t, args, env)]);
    t.match(hostA.stdout(), `transport ${expected}`);
    const serverA = `/${hostA.child.pid}`;
    const serverB = `/${hostB.child.pid}`;
    const [frontA, frontB] = [await freePort(), await freePort()];
    await startHaproxy(t, haproxyConfig(frontA, frontB, hostA.port, hostB.port));
    let killedA = false;
    const died = (): string | undefined => {
      for (const [name, host] of [
        ['A', hostA],
        ['B', hostB],
      ] as const) {
        if (host.child.exitCode !== null && !(name === 'A' && killedA))
          return `host ${name} exited (${host.child.exitCode}):\n${host.stderr()}`;
      }
      return undefined;
    };
    // Each wait below polls for what it names, and gives up at once if a host it depends on died.
    const polling = { failure: died, timeout: 10_000, interval: 20 };

    const onA = connectClient(t, frontA, '127.0.0.31');
    const onB = connectClient(t, frontB, '127.0.0.32');
    const welcomeA = await waitFor(() => onA.welcomes[0], { ...polling, what: 'welcome on host A' });
    const welcomeB = await waitFor(() => onB.welcomes[0], { ...polling, what: 'welcome on host B' });
    t.ok(
      welcomeA.server.endsWith(serverA),
      `the first client is on host A (${welcomeA.server})${died() ? `; ${died()}` : ''}`,
    );
    t.ok(welcomeB.server.endsWith(serverB), `the second client is on host B (${welcomeB.server})`);
    t.equal(welcomeA.address, '127.0.0.31', 'host A knows the client from the PROXY header');
    t.equal(welcomeB.address, '127.0.0.32', 'host B knows the client from the PROXY header');

    await say(onA, 'hello from A');
    const fromA = await waitFor(() => onB.messages.find((m) => m.text === 'hello from A'), {
      ...polling,
      what: 'A’s message on B',
    });
    t.same(
      fromA,
      { from: '127.0.0.31', text: 'hello from A', server: welcomeA.server },
      'a message from host A reaches a client of host B',
    );
    await say(onB, 'hello from B');
    const fromB = await waitFor(() => onA.messages.find((m) => m.text === 'hello from B'), {
      ...polling,
      what: 'B’s message on A',
    });
    t.equal(fromB.server, welcomeB.server, 'and the other way round');

    t.equal(died(), undefined, 'both hosts are still running');
    killedA = true;
    hostA.child.kill('SIGKILL');
    await hostA.exited;
    const moved = await waitFor(() => onA.welcomes.find((w) => w.server.endsWith(serverB)), {
      ...polling,
      what: 'the first client back, on host B',
    });
    t.equal(moved.address, '127.0.0.31', 'the client reconnected through HAProxy to host B');
    t.ok(onA.disconnects.length >= 1, `the client saw host A go (${onA.disconnects.join(', ')})`);

    await say(onA, 'A again, now on B');
    const after = await waitFor(() => onB.messages.find((m) => m.text === 'A again, now on B'), {
      ...polling,
      what: 'the reconnected client’s message',
    });
    t.same(after, { from: '127.0.0.31', text: 'A again, now on B', server: welcomeB.server });
    t.same(onB.disconnects, [], 'host B’s client stayed connected throughout');
    t.equal(died(), undefined, 'host B is still running');
  });
}
