// A Next.js app built with `output: 'standalone'`, run as its generated server.js under the launcher
// with 2 workers, unchanged. Its server.js begins with process.chdir(__dirname), which Node refuses
// in a worker: socketnaut makes it on the main thread (see lib/worker/process-apis.ts).
import http from 'node:http';
import path from 'node:path';
import t from 'tap';
import { request, requestJSON, waitFor } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';
import { buildNextStandalone } from '../next-build.ts';

interface Hello {
  hello: string;
  threadId: number;
  cwd: string;
}

const CLIENTS = 6;

const { serverJs, buildMs } = await buildNextStandalone();
t.comment(buildMs ? `next build took ${Math.round(buildMs)} ms` : 'next build: the earlier build of these sources');

t.test('a page and a route handler answer, from each worker; SIGTERM exits 0', async (t) => {
  const launcher = await startLauncher(t, [serverJs, '--workers', '2']);
  const threads = new Set<number>();
  await waitFor(async () => {
    const answers = await Promise.all([
      requestJSON<Hello>(launcher.port, { path: '/api/hello' }),
      requestJSON<Hello>(launcher.port, { path: '/api/hello' }),
    ]);
    for (const answer of answers) {
      t.equal(answer.hello, 'world', `the route handler answers, in worker ${answer.threadId}`);
      threads.add(answer.threadId);
    }
    return threads.size === 2;
  });
  const hello = await requestJSON<Hello>(launcher.port, { path: '/api/hello' });
  t.equal(hello.cwd, path.dirname(serverJs), "process.cwd() is server.js's directory, where it changed to");

  const page = await request(launcher.port, { path: '/' });
  t.equal(page.status, 200, 'the page answers');
  t.match(page.text, 'Hello from Next.js', 'rendered');
  const script = /src="(\/_next\/static\/[^"]+\.js)"/.exec(page.text)?.[1];
  t.ok(script, 'the page names a script');
  t.equal((await request(launcher.port, { path: script! })).status, 200, `its static file ${script} is served`);

  launcher.child.kill('SIGTERM');
  const { code } = await launcher.exited;
  t.equal(code, 0, 'SIGTERM: exit code 0');
  t.notMatch(launcher.stderr(), /ERR_WORKER_UNSUPPORTED_OPERATION|SOCKETNAUT_ERR/, 'no error was printed');
});

t.test('SIGHUP under load fails no request', async (t) => {
  const launcher = await startLauncher(t, [serverJs, '--workers', '2']);
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  t.teardown(() => agent.destroy());
  const before = new Set<number>();
  const after = new Set<number>();
  let reloaded = false;
  let ok = 0;
  const failures: string[] = [];
  let running = true;
  const client = async (): Promise<void> => {
    while (running) {
      try {
        const reply = await requestJSON<Hello>(launcher.port, { agent, path: '/api/hello' });
        (reloaded ? after : before).add(reply.threadId);
        ok++;
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  const clients = Array.from({ length: CLIENTS }, client);
  await waitFor(() => ok >= 200, 20_000);
  const servedBefore = new Set(before);
  launcher.child.kill('SIGHUP');
  await waitFor(() => launcher.stderr().includes('reload complete'), { timeout: 30_000, what: 'the reload' });
  reloaded = true;
  const atReload = ok;
  await waitFor(() => ok >= atReload + 200, 20_000);
  running = false;
  await Promise.all(clients);

  t.same(failures, [], 'no request failed');
  t.ok(ok >= 400, `${ok} requests served`);
  t.ok(
    [...after].some((id) => !servedBefore.has(id)),
    'requests after the reload were served by new workers',
  );
  launcher.child.kill('SIGTERM');
  t.equal((await launcher.exited).code, 0, 'then SIGTERM: exit code 0');
});
