import t from 'tap';
import WebSocket from 'ws';
import { request, transports } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';
import { examplePath, readmeCommand } from '../examples.ts';

/** Messages as they arrive, read one at a time in order. */
function inbox(ws: WebSocket): () => Promise<string> {
  const queued: string[] = [];
  const waiting: ((text: string) => void)[] = [];
  ws.on('message', (data: Buffer) => {
    const text = data.toString();
    const next = waiting.shift();
    if (next) next(text);
    else queued.push(text);
  });
  return () => {
    const text = queued.shift();
    if (text !== undefined) return Promise.resolve(text);
    return new Promise((resolve, reject) => {
      waiting.push(resolve);
      ws.once('close', () => reject(new Error('the connection closed while a message was awaited')));
    });
  };
}

async function open(port: number, localAddress: string): Promise<{ ws: WebSocket; next: () => Promise<string> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { localAddress });
  const next = inbox(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected HTTP ${res.statusCode}`)));
  });
  return { ws, next };
}

for (const transport of transports) {
  t.test(
    `${transport}: a message reaches every client of the worker, prefixed with its sender's address`,
    async (t) => {
      const args = readmeCommand('websocket', 'npm run socketnaut --');
      t.same(args, [examplePath('websocket/app.js'), '--workers', '1']);
      const launcher = await startLauncher(t, [...args, '--transport', transport]);
      t.match(launcher.stdout(), `1 worker · transport ${transport}`);

      const alice = await open(launcher.port, '127.0.0.21');
      t.teardown(() => alice.ws.terminate());
      const bob = await open(launcher.port, '127.0.0.22');
      t.teardown(() => bob.ws.terminate());

      alice.ws.send('hello from alice');
      t.equal(await alice.next(), '127.0.0.21: hello from alice', 'the sender gets its own message back');
      t.equal(await bob.next(), '127.0.0.21: hello from alice', 'the other client gets it');

      bob.ws.send('hi alice');
      t.equal(await alice.next(), '127.0.0.22: hi alice');
      t.equal(await bob.next(), '127.0.0.22: hi alice');

      const plain = await request(launcher.port);
      t.equal(plain.status, 426, 'a request without an upgrade is told to use WebSocket');
    },
  );
}
