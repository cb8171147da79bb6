import http from 'node:http';
import t from 'tap';
import { fixture, startProxy, transports, waitFor } from '../helpers.ts';

const COUNT = 1000;
// Bounds a stuck request, so that a hang fails the test with a count instead of a file timeout.
const REQUEST_DEADLINE_MS = 15_000;

interface Info {
  threadId: number;
  sync?: { remote: { address: string; port: number } };
  requested: { remote: { address: string; port: number } };
}

interface Outcome {
  address: string;
  localPort: number;
  info?: Info;
  error?: string;
}

const addressOf = (i: number): string => `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;

function get(port: number, localAddress: string): Promise<Outcome> {
  return new Promise((resolve) => {
    let localPort = 0;
    const req = http.request({ host: '127.0.0.1', port, path: '/', agent: false, localAddress }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', (err) => resolve({ address: localAddress, localPort, error: err.message }));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode !== 200)
          resolve({ address: localAddress, localPort, error: `HTTP ${res.statusCode}: ${text}` });
        else resolve({ address: localAddress, localPort, info: JSON.parse(text) as Info });
      });
    });
    req.on('socket', (socket) => socket.once('connect', () => (localPort = socket.localPort ?? 0)));
    req.setTimeout(REQUEST_DEADLINE_MS, () => req.destroy(new Error(`no response within ${REQUEST_DEADLINE_MS} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) =>
      resolve({ address: localAddress, localPort, error: err.code ?? err.message }),
    );
    req.end();
  });
}

t.equal(
  new Set(Array.from({ length: COUNT }, (_, i) => addressOf(i))).size,
  COUNT,
  'the client addresses are distinct',
);

for (const transport of transports) {
  t.test(`${transport}: ${COUNT} concurrent connections, each seen with its own address`, async (t) => {
    const { proxy, port } = await startProxy(t, { workerURL: fixture('http-server.js'), workerCount: 2, transport });
    t.equal(proxy.transport, transport);

    const outcomes = await Promise.all(Array.from({ length: COUNT }, (_, i) => get(port, addressOf(i))));

    const failed = outcomes.filter((outcome) => outcome.error !== undefined);
    const wrong = outcomes.filter(
      (outcome) =>
        outcome.info !== undefined &&
        (outcome.info.sync?.remote.address !== outcome.address ||
          outcome.info.sync.remote.port !== outcome.localPort ||
          outcome.info.requested.remote.address !== outcome.address),
    );
    const right = outcomes.length - failed.length - wrong.length;
    t.equal(right, COUNT, `${right} of ${COUNT} responses reported exactly their own client`);
    t.same(failed.slice(0, 5), [], 'no request failed (first few shown)');
    t.same(
      wrong.slice(0, 5).map(({ address, localPort, info }) => ({
        address,
        localPort,
        seen: info?.sync?.remote,
        requested: info?.requested.remote,
      })),
      [],
      'no response reported another client (first few shown)',
    );

    const threads = new Set(outcomes.map((outcome) => outcome.info?.threadId));
    t.equal(threads.size, 2, 'both workers served');
    t.equal(
      proxy.agents.reduce((sum, agent) => sum + agent.totalConnections, 0),
      COUNT,
      'each connection was dispatched exactly once',
    );
    await waitFor(() => proxy.agents.every((agent) => agent.connections === 0), 10_000);
    t.pass('every connection was reported closed');
  });
}
