import http from 'node:http';
import t from 'tap';
import { httpRequest, pace, startChildProxy, transports, waitFor } from './helpers.ts';

const RELOAD_EVERY_MS = 2000;
const DURATION_MS = 20_000;
const CLIENTS_PER_KIND = 3;

// The two transports run side by side, each with its own proxy process, to keep the file near 20 s.
t.jobs = 2;

for (const transport of transports) {
  t.test(
    `${transport}: a reload every 2 s for 20 s fails no request, keep-alive or not`,
    { buffered: true },
    async (t) => {
      const proxy = await startChildProxy(t, { transport, workerCount: 2 });
      const counts = {
        close: { ok: 0, failed: [] as string[], statuses: new Map<number, number>() },
        keepAlive: { ok: 0, failed: [] as string[], statuses: new Map<number, number>() },
      };
      const threads = new Set<number>();
      let running = true;

      const client = async (kind: 'close' | 'keepAlive'): Promise<void> => {
        const agent = kind === 'keepAlive' ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : false;
        const tally = counts[kind];
        try {
          while (running) {
            try {
              const reply = await httpRequest(proxy.port, {
                agent,
                headers: kind === 'close' ? { connection: 'close' } : {},
              });
              if (reply.status >= 200 && reply.status < 300) tally.ok++;
              else tally.statuses.set(reply.status, (tally.statuses.get(reply.status) ?? 0) + 1);
              threads.add(reply.threadId);
            } catch (err) {
              tally.failed.push((err as Error).message);
            }
          }
        } finally {
          if (agent) agent.destroy();
        }
      };
      const clients = [
        ...Array.from({ length: CLIENTS_PER_KIND }, () => client('close')),
        ...Array.from({ length: CLIENTS_PER_KIND }, () => client('keepAlive')),
      ];

      const reloads: Promise<unknown>[] = [];
      for (let elapsed = 0; elapsed < DURATION_MS; elapsed += RELOAD_EVERY_MS) {
        reloads.push(proxy.command('reload'));
        await pace(RELOAD_EVERY_MS);
      }
      const outcomes = await Promise.allSettled(reloads);
      running = false;
      await Promise.all(clients);

      const exited = (): number => proxy.events.filter((event) => event.event === 'worker-exit').length;
      // The last workers retired may still be draining their last keep-alive connections.
      await waitFor(() => exited() >= outcomes.length * 2, 10_000).catch(() => {});
      const exits = proxy.events.filter((event) => event.event === 'worker-exit');
      for (const [kind, tally] of Object.entries(counts)) {
        t.comment(
          `${transport}, ${kind === 'close' ? 'connection: close' : 'keep-alive'}: ${tally.ok} requests succeeded, ` +
            `${tally.failed.length} failed, ${[...tally.statuses.values()].reduce((a, b) => a + b, 0)} non-2xx`,
        );
        t.same(tally.failed, [], `${kind}: no request failed`);
        t.same(Object.fromEntries(tally.statuses), {}, `${kind}: no response was other than 2xx`);
        t.ok(tally.ok > 100, `${kind}: load ran throughout`);
      }
      t.comment(
        `${transport}: ${outcomes.length} reloads, ${exits.length} workers retired, ${threads.size} workers served`,
      );
      t.equal(
        outcomes.filter((outcome) => outcome.status === 'fulfilled').length,
        outcomes.length,
        'every reload completed',
      );
      t.ok(
        exits.every((exit) => exit.reason === 'retired'),
        'every worker that exited was retired, none died',
      );
      t.equal(exits.length, outcomes.length * 2, 'each reload replaced both workers');
      const { code } = await proxy.shutdown();
      t.equal(code, 0);
    },
  );
}
