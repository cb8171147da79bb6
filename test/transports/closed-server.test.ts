// A server the app closed gets no more connections, in every transport: one on its way when the
// server closes goes to another worker, as node:cluster's primary gives a connection its child
// refused to another child. The app closes its server on SIGTERM (or on its own) and answers 500
// once its 'close' has been emitted; clients open a new connection for each request meanwhile.
import http from 'node:http';
import t from 'tap';
import { fixture, waitFor } from '../helpers.ts';
import { startLauncher, type RunningLauncher } from '../launcher.ts';
import { allTransports, skipUnlessSupported } from '../transport-support.ts';

const app = fixture('close-then-500.js').pathname;
const CLIENTS = 8;
const RELOADS = 6;

const CLOSES = 6;

interface Tally {
  ok: number;
  /** The workers that served. */
  threads: Set<number>;
  afterClose: number;
  failed: string[];
}

/** One request on a new connection; `tally` says how it went. */
function requestOnce(port: number, tally: Tally): Promise<void> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        if (res.statusCode === 200) {
          tally.ok++;
          tally.threads.add((JSON.parse(body) as { threadId: number }).threadId);
        } else if (res.statusCode === 500) tally.afterClose++;
        else tally.failed.push(`HTTP ${res.statusCode}`);
        resolve();
      });
      res.on('error', (err) => {
        tally.failed.push(err.message);
        resolve();
      });
    });
    req.on('error', (err) => {
      tally.failed.push(err.message);
      resolve();
    });
  });
}

/** Asks one worker's app to close its server on its own; resolves with that worker's thread id. */
async function closeOne(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, agent: false, path: '/close' }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve((JSON.parse(body) as { threadId: number }).threadId));
      })
      .on('error', reject);
  });
}

async function reload(launcher: RunningLauncher, count: number): Promise<void> {
  launcher.child.kill('SIGHUP');
  await waitFor(() => launcher.stderr().split('reload complete').length > count, {
    timeout: 20_000,
    what: () => `reload ${count} to complete\n${launcher.stderr()}`,
  });
}

/** Runs `CLIENTS` clients, each a request at a time on a new connection, while `during` runs. */
async function underLoad(launcher: RunningLauncher, during: (tally: Tally) => Promise<void>): Promise<Tally> {
  const tally: Tally = { ok: 0, threads: new Set(), afterClose: 0, failed: [] };
  let running = true;
  const client = async (): Promise<void> => {
    while (running) await requestOnce(launcher.port, tally);
  };
  const clients = Array.from({ length: CLIENTS }, client);
  try {
    await waitFor(() => tally.ok >= 100, { timeout: 10_000, what: 'load to begin' });
    await during(tally);
  } finally {
    running = false;
    await Promise.all(clients);
  }
  return tally;
}

for (const transport of allTransports) {
  t.test(
    `${transport}: under reloads, no request reaches a server after its 'close', and none fails`,
    { skip: skipUnlessSupported(transport) },
    async (t) => {
      const launcher = await startLauncher(t, [app, '--workers', '2', '--transport', transport]);
      const tally = await underLoad(launcher, async () => {
        for (let i = 1; i <= RELOADS; i++) await reload(launcher, i);
      });
      launcher.child.kill('SIGTERM');
      t.equal((await launcher.exited).code, 0);
      t.ok(tally.ok > 0, `${tally.ok} requests served over ${RELOADS} reloads`);
      t.notMatch(launcher.stdout(), /stopped at the shutdown timeout/, 'each old worker ended once drained', {
        output: launcher.stdout(),
      });
      t.equal(tally.afterClose, 0, "no request reached a server after its 'close'");
      t.same(tally.failed, [], 'no request failed');
    },
  );
}

for (const transport of allTransports) {
  t.test(
    `${transport}: an app that closes its server on its own gets no request after its 'close', and none fails`,
    { skip: skipUnlessSupported(transport) },
    async (t) => {
      const launcher = await startLauncher(t, [app, '--workers', '2', '--transport', transport]);
      const tally = await underLoad(launcher, async (tally) => {
        for (let i = 0; i < CLOSES; i++) {
          const served = tally.threads.size;
          const closing = await closeOne(launcher.port);
          // Its replacement serves: a thread not seen before answers.
          await waitFor(() => tally.threads.size > served, {
            timeout: 10_000,
            what: () => `a replacement for worker ${closing}\n${launcher.stdout()}${launcher.stderr()}`,
          });
        }
      });
      launcher.child.kill('SIGTERM');
      t.equal((await launcher.exited).code, 0);
      t.ok(tally.ok > 0, `${tally.ok} requests served while ${CLOSES} servers closed`);
      t.notMatch(
        launcher.stdout(),
        /stopped at the shutdown timeout/,
        'each worker whose server closed ended at once',
        {
          output: launcher.stdout(),
        },
      );
      t.equal(tally.afterClose, 0, "no request reached a server after its 'close'");
      t.same(tally.failed, [], 'no request failed');
    },
  );
}
