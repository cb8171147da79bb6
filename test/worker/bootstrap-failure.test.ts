import { once } from 'node:events';
import net from 'node:net';
import t, { type Test } from 'tap';
import { consoleHandler, createServiceProxy, Level, type ServiceProxy, type ServiceProxyOptions } from 'socketnaut';
import { fixture, observeFor, transports, waitFor } from '../helpers.ts';

// The failures below are expected; keep their error logs off the test output.
const previousLevel = consoleHandler.level;
consoleHandler.setLevel(process.env.SOCKETNAUT_TEST_LOG === 'debug' ? Level.DEBUG : Level.EMERG);
t.teardown(() => consoleHandler.setLevel(previousLevel));

type BootstrapError = Error & { code?: string; cause?: { message?: string; code?: string } };

const OBSERVATION_MS = 2000;
// Past the next step of the restart backoff: long enough for a restart that should not come to show.
const AFTER_SHUTDOWN_MS = 300;

interface Observed {
  proxy: ServiceProxy;
  port: number;
  errors: BootstrapError[];
  exits: number;
  ready: boolean;
  readyEvent: Promise<unknown>;
}

async function startFailing(t: Test, options: Omit<ServiceProxyOptions, 'server'>): Promise<Observed> {
  const server = net.createServer();
  let proxy: ServiceProxy | undefined;
  // One teardown for both: a proxy closes its server when it shuts down.
  t.teardown(() => (proxy ? proxy.shutdown({ timeout: 2000 }) : void server.close()));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  // Without the test runner's preloads a worker fails within tens of milliseconds, fast enough
  // that restarts without backoff would show as a flood of exits.
  proxy = createServiceProxy({ workerOptions: { execArgv: [] }, ...options, server });
  const observed: Observed = {
    proxy,
    port: (server.address() as net.AddressInfo).port,
    errors: [],
    exits: 0,
    ready: false,
    readyEvent: new Promise((resolve) => proxy.once('ready', resolve)),
  };
  proxy.on('error', (err: BootstrapError) => observed.errors.push(err));
  proxy.on('worker-exit', () => observed.exits++);
  proxy.on('ready', () => (observed.ready = true));
  return observed;
}

/** Resolves once the client's connection is closed by the other end, or rejects after `timeout` ms. */
function connectionClosed(port: number, timeout: number): Promise<{ received: number }> {
  return new Promise((resolve, reject) => {
    let received = 0;
    const socket = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connection still open after ${timeout} ms`));
    }, timeout);
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ received });
    });
    socket.on('connect', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  });
}

const failing = [
  { name: 'a workerURL that does not exist', url: fixture('does-not-exist.js'), cause: /does-not-exist\.js/ },
  {
    name: 'a module that throws while loading',
    url: fixture('throws-on-load.js'),
    cause: /fixture failed to load on purpose/,
  },
];

for (const transport of transports) {
  for (const { name, url, cause } of failing) {
    t.test(`${transport}: ${name}`, async (t) => {
      const observed = await startFailing(t, { workerURL: url, workerCount: 2, transport });
      // Worker start-up time varies with the machine's load: the window opens at the first failure.
      await waitFor(() => observed.errors.length > 0, 10_000);
      const exitsBefore = observed.exits;
      // An observation window, not a sleep: the count of restarts over a fixed time is what is under test.
      await observeFor(OBSERVATION_MS);
      const exitsInWindow = observed.exits - exitsBefore;

      t.equal(observed.errors.length, 1, "exactly one 'error'");
      const err = observed.errors[0];
      t.equal(err?.code, 'SOCKETNAUT_ERR_WORKER_BOOTSTRAP');
      t.match(err?.message, url.href, 'the message names the module');
      t.match(err?.cause?.message, cause, "the cause carries the module's own error");
      t.ok(observed.exits >= 2, `workers were started and failed (${observed.exits} exits)`);
      t.ok(exitsInWindow < 12, `restarts back off (${exitsInWindow} exits in ${OBSERVATION_MS} ms)`);
      t.equal(observed.ready, false, "no 'ready'");
      t.equal(observed.proxy.agents.filter((a) => a.state === 'ready').length, 0, 'no worker serving');

      const results = await observed.proxy.shutdown({ timeout: 1000 });
      t.ok(Array.isArray(results), 'shutdown() resolves');
      const exitsAtShutdown = observed.exits;
      t.equal(observed.proxy.agents.length, 0, 'no workers left after shutdown');
      // Nothing may be respawned once shut down: watch past the next backoff step and look again. A
      // window, not a sleep: the restart under watch is one that must not come.
      await observeFor(AFTER_SHUTDOWN_MS);
      t.equal(observed.exits, exitsAtShutdown, 'no restarts after shutdown');
      t.equal(observed.proxy.agents.length, 0, 'still no workers');
    });

    t.test(`${transport}: ${name}, minWorkers 0: clients are closed, not left hanging`, async (t) => {
      const observed = await startFailing(t, { workerURL: url, minWorkers: 0, maxWorkers: 2, transport });
      await observed.readyEvent;
      t.equal(observed.proxy.agents.length, 0, 'no worker before a client comes');

      const first = await connectionClosed(observed.port, 5000);
      t.equal(first.received, 0, 'first client: closed without a reply');
      t.equal(observed.errors.length, 1, "one 'error'");
      t.equal(observed.errors[0]?.code, 'SOCKETNAUT_ERR_WORKER_BOOTSTRAP');
      t.match(observed.errors[0]?.cause?.message, cause);

      const later = await Promise.all([1, 2, 3].map(() => connectionClosed(observed.port, 5000)));
      t.same(
        later.map((r) => r.received),
        [0, 0, 0],
        'later clients: closed too',
      );
      t.equal(observed.errors.length, 1, "still one 'error'");
      await observed.proxy.shutdown({ timeout: 1000 });
    });
  }
}
