import t from 'tap';
import { fixture, requestJSON, transports } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';

for (const transport of transports) {
  t.test(`${transport}: an unchanged app runs on four workers behind the launcher's port`, async (t) => {
    const app = fixture('plain-app.js').pathname;
    const launcher = await startLauncher(t, ['--workers', '4', '--transport', transport, app]);
    t.match(
      launcher.stdout(),
      new RegExp(`socketnaut: http://127\\.0\\.0\\.1:\\d+ · 4 workers · transport ${transport}`),
    );
    const threads = new Set<number>();
    for (let i = 0; i < 16; i++) {
      const reply = await requestJSON<{ threadId: number }>(launcher.port);
      threads.add(reply.threadId);
    }
    t.ok(threads.size > 1, `responses came from ${threads.size} worker threads`);
  });
}

t.test('settings come from the environment when no flag is given', async (t) => {
  const app = fixture('plain-app.js').pathname;
  const launcher = await startLauncher(t, [app], { SOCKETNAUT_WORKERS: '3', SOCKETNAUT_TRANSPORT: 'pipe' });
  t.match(launcher.stdout(), /· 3 workers · transport pipe/);
});
