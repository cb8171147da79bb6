import http from 'node:http';
import t from 'tap';
import { fixture, requestJSON, transports, waitFor } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';

const CLIENTS = 6;

for (const transport of transports) {
  for (const keepAlive of [false, true]) {
    t.test(
      `${transport}, ${keepAlive ? 'keep-alive' : 'connection: close'}: SIGHUP under load fails no request`,
      async (t) => {
        const launcher = await startLauncher(t, [
          '--workers',
          '2',
          '--transport',
          transport,
          fixture('plain-app.js').pathname,
        ]);
        const agent = new http.Agent({ keepAlive, maxSockets: CLIENTS });
        t.teardown(() => agent.destroy());
        const threadsBefore = new Set<number>();
        const threadsAfter = new Set<number>();
        let reloaded = false;
        let ok = 0;
        const failures: string[] = [];
        let running = true;
        const client = async (): Promise<void> => {
          while (running) {
            try {
              const reply = await requestJSON<{ threadId: number }>(launcher.port, { agent });
              (reloaded ? threadsAfter : threadsBefore).add(reply.threadId);
              ok++;
            } catch (err) {
              failures.push((err as Error).message);
            }
          }
        };
        const clients = Array.from({ length: CLIENTS }, client);
        await waitFor(() => ok >= 200, 10_000);
        const servedBeforeReload = new Set(threadsBefore);
        launcher.child.kill('SIGHUP');
        await waitFor(() => launcher.stderr().includes('reload complete'), 15_000);
        reloaded = true;
        const afterReload = ok;
        await waitFor(() => ok >= afterReload + 200, 10_000);
        running = false;
        await Promise.all(clients);

        t.same(failures, [], 'no request failed');
        t.ok(ok >= 400, `${ok} requests served`);
        const replaced = [...threadsAfter].filter((id) => !servedBeforeReload.has(id));
        t.ok(replaced.length > 0, 'requests after the reload were served by new workers');
      },
    );
  }
}
