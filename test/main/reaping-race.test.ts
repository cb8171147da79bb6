import t from 'tap';
import type { ServiceProxyAgent } from 'socketnaut';
import { fixture, pace, request, startProxy, transports, waitFor, withDeadline } from '../helpers.ts';

const TOTAL = 300;
const REQUEST_DEADLINE_MS = 5000;
// Pauses around the reaper's 5 ms period: most end before a worker becomes reapable, some just
// around the moment it does, a few long enough that it surely is. Each reaped worker must be
// restarted, which is slow, so those are rare.
const PAUSES = [0, 2, 1, 4, 0, 3, 1, 5, 0, 2, 4, 1, 6, 0, 3, 2, 1, 4, 0, 7, 2, 1, 3, 0, 30];

for (const transport of transports) {
  t.test(`${transport}: idle reaping never resets a connection on its way to a worker`, async (t) => {
    const { proxy, port } = await startProxy(t, {
      workerURL: fixture('http-server.js'),
      minWorkers: 0,
      maxWorkers: 2,
      workersCheckingInterval: 5,
      transport,
      // Workers are restarted often here; the test runner's preloads are of no use in them.
      workerOptions: { execArgv: [] },
    });
    const exits: string[] = [];
    const onExit = (_handle: ServiceProxyAgent, _code: number, reason: string): void => {
      exits.push(reason);
    };
    proxy.on('worker-exit', onExit);
    t.teardown(() => proxy.off('worker-exit', onExit));

    const errors: string[] = [];
    let sent = 0;
    const one = async (): Promise<void> => {
      sent++;
      try {
        const reply = await withDeadline(request(port, { path: '/' }), REQUEST_DEADLINE_MS, 'a reply');
        if (reply.status !== 200) errors.push(`HTTP ${reply.status}`);
      } catch (err) {
        errors.push((err as Error).message);
      }
    };

    for (let round = 0; sent < TOTAL; round++) {
      // Let the last connections be reported closed, so the workers are idle and reapable.
      await waitFor(() => proxy.agents.every((a) => a.connections === 0), 5000, 1);
      const pause = PAUSES[round % PAUSES.length]!;
      if (pause > 0) await pace(pause);
      switch (round % 3) {
        case 0:
          await one();
          break;
        case 1:
          await Promise.all(Array.from({ length: 2 + (round % 5) }, one));
          break;
        default:
          for (let i = 0; i < 3; i++) await one();
      }
    }

    t.same(errors, [], `all ${sent} requests succeed`);
    t.ok(sent >= TOTAL, `${sent} requests sent`);
    t.ok(exits.length > 0, `workers were reaped while the requests came (${exits.length} exits)`);
    t.same(
      exits.filter((reason) => reason !== 'retired'),
      [],
      'every exit was a retirement',
    );
  });
}
