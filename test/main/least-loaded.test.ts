import http from 'node:http';
import t from 'tap';
import type { ProxyStats, ServiceProxy } from 'socketnaut';
import { fixture, request, startProxy, transports, waitFor } from '../helpers.ts';

const FAST_REQUESTS = 10;
const BLOCK_MS = 600;

interface Outcome {
  blockedThread: number;
  /** The worker that served each fast request, and whether the block still lasted when it was sent. */
  fast: { threadId: number; sentWhileBlocked: boolean }[];
}

/** Resolves once some worker holds a connection and its event loop was busy since the previous reading. */
async function untilVisiblyBlocked(proxy: ServiceProxy, timeout = 5000): Promise<void> {
  let workers: ProxyStats['workers'] | undefined;
  await waitFor(
    async () => {
      // Each reading covers the time since the one before: the first only marks where the next begins.
      const first = workers === undefined;
      ({ workers } = await proxy.stats('test'));
      return !first && workers.some((w) => w.connections === 1 && w.eventLoopUtilization >= 0.9);
    },
    { timeout, interval: 5, what: () => `a worker that looks blocked (last: ${JSON.stringify(workers)})` },
  );
}

/**
 * Starts a request that blocks one worker's event loop, waits until the main thread can see the
 * block, then sends fast requests, each on a new connection: all at once, or one after another.
 */
async function blockThenFast(proxy: ServiceProxy, port: number, mode: 'burst' | 'sequential'): Promise<Outcome> {
  const blocked = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: `/block?ms=${BLOCK_MS}`, agent: false }, resolve).on('error', reject);
  });
  let blockEnded = false;
  const body = new Promise<string>((resolve) => {
    let text = '';
    blocked.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    blocked.on('end', () => {
      blockEnded = true;
      resolve(text);
    });
  });
  await untilVisiblyBlocked(proxy);
  const fastRequest = async (): Promise<Outcome['fast'][number]> => {
    const sentWhileBlocked = !blockEnded;
    const reply = await request(port, { path: '/fast', agent: false });
    return { threadId: Number(reply.text), sentWhileBlocked };
  };
  const fast: Outcome['fast'] = [];
  if (mode === 'burst') {
    fast.push(...(await Promise.all(Array.from({ length: FAST_REQUESTS }, fastRequest))));
  } else {
    for (let i = 0; i < FAST_REQUESTS; i++) fast.push(await fastRequest());
  }
  return { blockedThread: Number(await body), fast };
}

function pattern(outcome: Outcome): string {
  return outcome.fast.map((f) => (f.threadId === outcome.blockedThread ? 'B' : '.')).join('');
}

for (const transport of transports) {
  t.test(`${transport}: least-loaded sends a burst away from a worker whose event loop is blocked`, async (t) => {
    const { proxy, port } = await startProxy(t, {
      workerURL: fixture('obs-busy.js'),
      workerCount: 2,
      transport,
      balance: 'least-loaded',
    });
    const outcome = await blockThenFast(proxy, port, 'burst');
    t.ok(
      proxy.agents.some((a) => a.threadId === outcome.blockedThread),
      'the block ran on a worker of the pool',
    );
    t.ok(
      outcome.fast.every((f) => f.sentWhileBlocked),
      'the burst was sent while the block lasted',
    );
    // Each pick between two readings counts against the chosen worker, so the tenth of a burst may
    // tip onto the blocked worker; no more than that.
    const toBlocked = outcome.fast.filter((f) => f.threadId === outcome.blockedThread).length;
    t.ok(toBlocked <= 1, `${toBlocked} of ${FAST_REQUESTS} went to the blocked worker (${pattern(outcome)})`);
  });

  t.test(`${transport}: least-loaded keeps a steady stream of requests away from a blocked worker`, async (t) => {
    const { proxy, port } = await startProxy(t, {
      workerURL: fixture('obs-busy.js'),
      workerCount: 2,
      transport,
      balance: 'least-loaded',
    });
    const outcome = await blockThenFast(proxy, port, 'sequential');
    // A request given to the blocked worker waits for the block to end, so later ones are sent after it.
    const duringBlock = outcome.fast.filter((f) => f.sentWhileBlocked);
    const toBlocked = duringBlock.filter((f) => f.threadId === outcome.blockedThread).length;
    t.equal(toBlocked, 0, `none of those sent during the block went to the blocked worker (${pattern(outcome)})`);
    t.ok(duringBlock.length >= 1, `${duringBlock.length} sent while the block lasted`);
  });
}

// Round-robin sends every other request to the blocked worker: the tests above can tell them apart.
t.test('round-robin, for contrast, sends half of a burst to the blocked worker', async (t) => {
  const { proxy, port } = await startProxy(t, {
    workerURL: fixture('obs-busy.js'),
    workerCount: 2,
    balance: 'round-robin',
  });
  const outcome = await blockThenFast(proxy, port, 'burst');
  const toBlocked = outcome.fast.filter((f) => f.threadId === outcome.blockedThread).length;
  t.equal(
    toBlocked,
    FAST_REQUESTS / 2,
    `${toBlocked} of ${FAST_REQUESTS} went to the blocked worker (${pattern(outcome)})`,
  );
});
