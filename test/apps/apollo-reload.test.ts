// An Apollo Server 5 app (startStandaloneServer, as Apollo's docs show it) under the launcher with 2
// workers, unchanged: SIGTERM runs Apollo's stop to its end in every worker and exits 0, and reloads
// under load fail no request.
//
// Apollo's drain ends at once every connection not handling a request, without a `Connection: close`:
// one whose next request is already on its way gets a FIN instead of an answer. Alone and under
// node:cluster, 8 busy keep-alive clients lose 7 to 9 requests per reload of 2 workers that way. The
// launcher lets the old worker's app hear SIGTERM only once its keep-alive connections have closed
// after their answers, so the drain finds none to cut: the clients here retry nothing.
import http from 'node:http';
import t from 'tap';
import { fixture, pace, waitFor } from '../helpers.ts';
import { startLauncher, transportsHere } from '../launcher.ts';

const app = fixture('apollo-app.js').pathname;
const CLIENTS = 8;
const RELOADS = 2;
const QUERY = JSON.stringify({ query: 'query { hello(name: "reload") { greeting threadId } }' });

interface Hello {
  greeting: string;
  threadId: number;
}

/** A query's answer, or why it got none. */
type Outcome = { hello: Hello } | { failure: string };

function query(port: number, agent: http.Agent): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: '/', agent, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        res.on('error', (err) => resolve({ failure: `${err.message} after the answer began` }));
        res.on('end', () => {
          if (res.statusCode !== 200) return resolve({ failure: `HTTP ${res.statusCode}: ${text}` });
          const hello = (JSON.parse(text) as { data?: { hello?: Hello } }).data?.hello;
          resolve(hello?.greeting === 'Hello, reload' ? { hello } : { failure: `unexpected answer ${text}` });
        });
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) =>
      resolve({
        failure: `${err.code ?? ''} ${err.message}, on a ${req.reusedSocket ? 'reused' : 'fresh'} connection`,
      }),
    );
    req.end(QUERY);
  });
}

function stoppedThreads(stdout: string): number[] {
  return [...stdout.matchAll(/apollo stopped in thread (\d+)/g)].map((match) => Number(match[1]));
}

for (const transport of await transportsHere(['handoff', 'pipe', 'reuseport'] as const)) {
  t.test(`${transport}: SIGTERM runs Apollo's stop to its end in each idle worker, and exits 0`, async (t) => {
    const launcher = await startLauncher(t, [app, '--workers', '2', '--transport', transport]);
    launcher.child.kill('SIGTERM');
    t.equal((await launcher.exited).code, 0, 'exit code 0');
    t.equal(new Set(stoppedThreads(launcher.stdout())).size, 2, "both workers ran their plugins' serverWillStop");
    t.notMatch(launcher.stderr(), /SOCKETNAUT_ERR|pending/, 'no error, no worker held to its shutdown timeout');
  });

  t.test(`${transport}: ${RELOADS} reloads under load fail no request`, async (t) => {
    const launcher = await startLauncher(t, [app, '--workers', '2', '--transport', transport]);
    const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
    t.teardown(() => agent.destroy());
    const failures: string[] = [];
    const threads = new Set<number>();
    let answered = 0;
    let running = true;
    const client = async (): Promise<void> => {
      while (running) {
        const outcome = await query(launcher.port, agent);
        if ('hello' in outcome) {
          answered++;
          threads.add(outcome.hello.threadId);
        } else failures.push(outcome.failure);
      }
    };
    const clients = Array.from({ length: CLIENTS }, client);
    t.teardown(async () => {
      running = false;
      await Promise.all(clients);
    });
    await waitFor(() => answered >= 200, { timeout: 20_000, what: 'the first 200 answers' });
    for (let reload = 1; reload <= RELOADS; reload++) {
      launcher.child.kill('SIGHUP');
      await waitFor(() => launcher.stderr().split('reload complete').length > reload, {
        timeout: 20_000,
        what: `reload ${reload}`,
      });
      const atReload = answered;
      await waitFor(() => answered >= atReload + 100, { timeout: 20_000, what: `answers after reload ${reload}` });
      await pace(300);
    }
    running = false;
    await Promise.all(clients);

    t.same(failures, [], 'no request failed');
    t.comment(`${answered} answers`);
    t.ok(threads.size >= 2 + 2 * RELOADS, `the workers of every generation answered (${threads.size} threads)`);
    t.equal(stoppedThreads(launcher.stdout()).length, 2 * RELOADS, "every old worker ran Apollo's stop to its end");
    launcher.child.kill('SIGTERM');
    t.equal((await launcher.exited).code, 0, 'then SIGTERM: exit code 0');
  });
}
