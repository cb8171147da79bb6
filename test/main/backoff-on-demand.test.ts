import t from 'tap';
import { consoleHandler, Level, type ServiceProxyAgent } from 'socketnaut';
import { connectOutcome, fixture, observeFor, pace, startProxy } from '../helpers.ts';

// Failing workers are expected here; keep their warnings off the test output.
consoleHandler.setLevel(Level.ERROR);

const WINDOW_MS = 2000;
const CONNECTIONS = 40;

// With minWorkers 0, workers start on demand. A module that cannot load must not be started again
// for every new connection: starts back off as restarts do (100 ms, x1.5), about 7 in 2 s.
t.test('with minWorkers 0, a module that fails to load is retried with backoff, not once per connection', async (t) => {
  const { proxy, port } = await startProxy(t, {
    workerURL: fixture('throws-on-load.js'),
    minWorkers: 0,
    maxWorkers: 2,
    queueTimeout: 100,
    workerOptions: { execArgv: [] },
  });
  proxy.on('error', () => {});
  const starts: number[] = [];
  const onExit = (_agent: ServiceProxyAgent): void => {
    starts.push(performance.now());
  };
  proxy.on('worker-exit', onExit);
  t.teardown(() => proxy.off('worker-exit', onExit));

  const begin = performance.now();
  for (let i = 0; i < CONNECTIONS; i++) {
    await pace(begin + (i * WINDOW_MS) / CONNECTIONS - performance.now());
    void connectOutcome(port);
  }
  // An observation window: what is under test is how many starts happen in a fixed time.
  await observeFor(begin + WINDOW_MS - performance.now());
  const inWindow = starts.filter((at) => at - begin <= WINDOW_MS).length;
  t.ok(inWindow >= 2, `it kept trying (${inWindow} starts)`);
  t.ok(inWindow <= 12, `${inWindow} starts for ${CONNECTIONS} connections in ${WINDOW_MS} ms: backed off`);
});
