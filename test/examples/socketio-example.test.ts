import http from 'node:http';
import t, { type Test } from 'tap';
import { io, type Socket } from 'socket.io-client';
import { examplePath, readmeCommand, runAlone, untilAnswered } from '../examples.ts';
import { waitFor } from '../helpers.ts';
import { runLauncher, startLauncher } from '../launcher.ts';
import { freePort, skipUnlessInstalled, startRedis } from '../services.ts';

const app = examplePath('socketio-redis/app.js');

interface Welcome {
  address: string;
  server: string;
  worker: number;
}

interface Client {
  socket: Socket;
  welcome: Promise<Welcome>;
  messages: { from: string; text: string }[];
}

function connect(t: Test, port: number, address: string, transports?: string[]): Client {
  const socket = io(`http://127.0.0.1:${port}`, {
    ...(transports ? { transports } : {}),
    agent: new http.Agent({ localAddress: address, keepAlive: false }) as never,
    forceNew: true,
    reconnection: false,
    timeout: 5000,
  });
  t.teardown(() => socket.close());
  const messages: Client['messages'] = [];
  socket.on('chat message', (message: Client['messages'][number]) => messages.push(message));
  const welcome = new Promise<Welcome>((resolve, reject) => {
    socket.once('welcome', resolve);
    socket.once('connect_error', reject);
  });
  return { socket, welcome, messages };
}

t.test(
  "the README's command: a chat across four workers, with each client's own address",
  { skip: skipUnlessInstalled('redis') },
  async (t) => {
    const redis = await startRedis(t);
    const args = readmeCommand('socketio-redis', 'npm run socketnaut --');
    t.same(args, [app, '--workers', '4']);
    const launcher = await startLauncher(t, args, { REDIS_URL: redis.url });

    // Long-polling clients need every request of a session on one worker; the others upgrade to WebSocket.
    const clients = Array.from({ length: 12 }, (_, i) =>
      connect(t, launcher.port, `127.0.0.${60 + i}`, i % 2 === 0 ? ['polling'] : undefined),
    );
    const welcomes = await Promise.all(clients.map((client) => client.welcome));
    t.same(
      welcomes.map((welcome) => welcome.address),
      clients.map((_, i) => `127.0.0.${60 + i}`),
      'each client is greeted with its own address',
    );
    const workers = new Set(welcomes.map((welcome) => welcome.worker));
    t.ok(workers.size > 1, `the clients are spread over ${workers.size} workers`);

    t.same(await clients[0]!.socket.timeout(5000).emitWithAck('chat message', 'hello, everyone'), { ok: true });
    await waitFor(() => clients.every((client) => client.messages.length === 1), {
      what: 'the message on every client',
      timeout: 5000,
      interval: 20,
    });
    for (const client of clients)
      t.same(client.messages[0], { from: '127.0.0.60', text: 'hello, everyone', server: welcomes[0]!.server });

    for (const bad of [42, '', 'x'.repeat(1001)]) {
      const ack = (await clients[1]!.socket.timeout(5000).emitWithAck('chat message', bad)) as {
        ok: boolean;
        error?: string;
      };
      t.same(
        ack,
        { ok: false, error: 'a message is a string of 1 to 1000 characters' },
        `refuses ${JSON.stringify(bad).slice(0, 20)}`,
      );
    }
    t.equal(clients[2]!.messages.length, 1, 'nothing refused was broadcast');
  },
);

t.test('without Redis, the app fails to start and says why', async (t) => {
  const closedPort = await freePort();
  const { code, stderr } = await runLauncher([app, '--workers', '1', '--port', '0', '--host', '127.0.0.1'], {
    REDIS_URL: `redis://127.0.0.1:${closedPort}`,
  });
  t.equal(code, 1);
  t.match(stderr, `ECONNREFUSED 127.0.0.1:${closedPort}`);
});

t.test('the same file runs alone', { skip: skipUnlessInstalled('redis') }, async (t) => {
  const redis = await startRedis(t);
  process.env.REDIS_URL = redis.url;
  const alone = await runAlone(t, app);
  delete process.env.REDIS_URL;
  // The app prints nothing once it listens: connect until it answers.
  const welcome = await untilAnswered(alone, async () => {
    const client = connect(t, alone.port, '127.0.0.59', ['polling']);
    try {
      return await client.welcome;
    } finally {
      client.socket.close();
    }
  });
  t.equal(welcome.address, '127.0.0.59');
});
