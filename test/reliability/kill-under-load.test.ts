import http from 'node:http';
import type net from 'node:net';
import t from 'tap';
import { httpRequest, now, pace, startChildProxy, summary, transports, waitFor, type ChildEvent } from './helpers.ts';

const KILLS = 20;
const KEEP_ALIVE_CLIENTS = 3;
const CLOSE_CLIENTS = 2;
// A keep-alive client starts a new connection this often, so that a replacement worker gets some.
const REQUESTS_PER_CONNECTION = 10;
// Steady load, not a saturating one: on two cores, a replacement's start needs CPU too.
const PAUSE_MS = 5;
// A worker must have served this long before it dies, or its death counts as a crash loop.
const VICTIM_UPTIME_MS = 1100;
const RESPAWN_LIMIT_MS = 1000;
const REQUEST_DEADLINE_MS = 5000;

for (const transport of transports) {
  t.test(`${transport}: ${KILLS} worker deaths under load fail no request on the surviving worker`, async (t) => {
    // The proxy runs in a process of its own, as in production: the test runner's preloaded modules
    // would otherwise load in every new worker thread too and triple what a start costs.
    const proxy = await startChildProxy(t, { transport, workerCount: 2 });
    const port = proxy.port;

    const live = new Map<number, number>();
    const exited: ChildEvent[] = [];
    const bootCpu: number[] = [];
    const onEvent = (event: ChildEvent): void => {
      if (event.event === 'worker-online') live.set(event.threadId!, event.at);
      if (event.event === 'worker-exit') {
        live.delete(event.threadId!);
        exited.push(event);
      }
    };
    proxy.events.forEach(onEvent);
    proxy.child.on('message', (message: ChildEvent) => {
      if (message.event) onEvent(message);
    });

    const kills: { threadId: number; at: number }[] = [];
    const killed = new Set<number>();
    const servedBy = new Map<number, number>();
    const onSurvivor: string[] = [];
    const hung: string[] = [];
    const unattributed: { started: number; failed: number; message: string }[] = [];
    let onVictim = 0;
    let ok = 0;
    let running = true;

    const record = (
      started: number,
      socket: net.Socket | undefined,
      known: WeakMap<net.Socket, number>,
      err: Error,
    ): void => {
      const threadId = socket && known.get(socket);
      if (err.message.startsWith('no reply within')) hung.push(`${err.message} (thread ${threadId ?? 'unknown'})`);
      else if (threadId === undefined) unattributed.push({ started, failed: now(), message: err.message });
      else if (killed.has(threadId)) onVictim++;
      else onSurvivor.push(`thread ${threadId}: ${err.message}`);
    };

    const client = async (keepAlive: boolean): Promise<void> => {
      const agent = new http.Agent({ keepAlive, maxSockets: 1 });
      const known = new WeakMap<net.Socket, number>();
      let onConnection = 0;
      try {
        while (running) {
          const recycle = keepAlive && ++onConnection % REQUESTS_PER_CONNECTION === 0;
          let socket: net.Socket | undefined;
          const started = now();
          try {
            const reply = await httpRequest(port, {
              agent,
              headers: recycle ? { connection: 'close' } : {},
              deadline: REQUEST_DEADLINE_MS,
              onSocket: (s) => (socket = s),
            });
            if (reply.status !== 200) throw new Error(`HTTP ${reply.status}`);
            known.set(socket!, reply.threadId);
            servedBy.set(reply.threadId, (servedBy.get(reply.threadId) ?? 0) + 1);
            ok++;
          } catch (err) {
            record(started, socket, known, err as Error);
          }
          await pace(PAUSE_MS);
        }
      } finally {
        agent.destroy();
      }
    };
    const clients = [
      ...Array.from({ length: KEEP_ALIVE_CLIENTS }, () => client(true)),
      ...Array.from({ length: CLOSE_CLIENTS }, () => client(false)),
    ];

    // Oldest first.
    const workers = (): [number, number][] => [...live].sort((a, b) => a[1] - b[1]);
    const respawnTimes: number[] = [];
    let servedAtKill = new Map<number, number>();
    for (let i = 0; i < KILLS; i++) {
      // Both workers serve load, and the older has been up long enough for its death not to be a crash loop.
      await waitFor(() => {
        const pool = workers();
        return (
          pool.length === 2 &&
          pool.every(([threadId]) => (servedBy.get(threadId) ?? 0) - (servedAtKill.get(threadId) ?? 0) >= 5) &&
          now() - pool[0]![1] >= VICTIM_UPTIME_MS
        );
      }, 10_000);
      const [victim] = workers()[0]!;
      servedAtKill = new Map(servedBy);
      killed.add(victim);
      const online = proxy.next('worker-online', undefined, 5000);
      // Half the deaths are the thread being terminated, half the app calling process.exit().
      const kill = await proxy.command<{ threadId: number; at: number }>('kill', {
        which: victim,
        how: i % 2 === 0 ? 'terminate' : 'exit',
      });
      kills.push(kill);
      const replacement = await online;
      respawnTimes.push(replacement.at - kill.at);
      if (typeof replacement.bootCpuMs === 'number') bootCpu.push(replacement.bootCpuMs);
    }
    await waitFor(
      () => workers().length === 2 && workers().every(([threadId]) => (servedBy.get(threadId) ?? 0) > 0),
      10_000,
    );
    running = false;
    await Promise.all(clients);

    const exitDelays = exited.map((exit) => exit.at - kills.find((kill) => kill.threadId === exit.threadId)!.at);
    t.comment(`${transport}: kill to 'worker-exit', ms: ${summary(exitDelays)}`);
    t.comment(`${transport}: kill to the replacement's 'worker-online', ms: ${summary(respawnTimes)}`);
    t.comment(`${transport}: CPU time the replacement thread had used when it came online, ms: ${summary(bootCpu)}`);
    t.comment(
      `${transport}: ${ok} requests served; failed: ${onVictim} on killed workers' connections, ` +
        `${unattributed.length} before their connection's first reply, ${onSurvivor.length} on survivors' connections`,
    );
    t.equal(respawnTimes.length, KILLS, 'every kill was followed by a replacement');
    t.ok(
      respawnTimes.every((ms) => ms < RESPAWN_LIMIT_MS),
      `every replacement served within ${RESPAWN_LIMIT_MS} ms of the kill (max ${Math.max(...respawnTimes).toFixed(0)} ms)`,
    );
    t.same(onSurvivor, [], 'no request failed on a connection served by a surviving worker');
    t.same(hung, [], 'no request was left without an answer or an error');
    // A connection that failed before its first reply may have been given to the dying worker (it
    // stays a candidate until its exit is seen); it must have failed soon after a kill, not at random.
    const unexplained = unattributed.filter(
      (failure) => !kills.some((kill) => failure.failed >= kill.at && failure.failed - kill.at <= 1000),
    );
    t.same(unexplained, [], 'every failure on a new connection came less than a second after a kill');
    t.ok(ok > KILLS * 10, `load ran throughout (${ok} requests)`);
    t.equal(exited.length, KILLS, 'no worker died but the killed ones');
    t.ok(
      exited.every((exit) => killed.has(exit.threadId!)),
      'every worker that died was one the test killed',
    );
    t.ok(proxy.child.exitCode === null && proxy.child.signalCode === null, 'the main process is still running');
    t.equal((await httpRequest(port)).status, 200, 'the proxy still serves');
    const { code } = await proxy.shutdown();
    t.equal(code, 0, 'the main process exits 0 when shut down');
    t.notMatch(proxy.stderr(), /Uncaught|Error/, 'nothing on stderr');
  });
}
