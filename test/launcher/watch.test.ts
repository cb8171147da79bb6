// --watch: a change to a file of the app reloads the workers with no failed request; code that fails
// to load leaves the old workers serving; changes outside the watched tree reload nothing.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import t from 'tap';
import { observeFor, request, waitFor, withDeadline } from '../helpers.ts';
import { cliPath, startLauncher, type RunningLauncher } from '../launcher.ts';

/** Replies `<reply> <threadId>`, so that a test can tell which code, and which worker, answered. */
function appSource(reply: string): string {
  return [
    "import http from 'node:http';",
    "import { threadId } from 'node:worker_threads';",
    `const REPLY = ${reply};`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the app's own source, with a template literal
    'http.createServer((req, res) => res.end(`${REPLY} ${threadId}`)).listen(process.env.PORT);',
    '',
  ].join('\n');
}

/** A fresh app directory, removed in teardown, with `files` written in it (paths relative to it). */
function appDirectory(t: Test, files: Record<string, string> = {}): { dir: string; app: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socketnaut-watch-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const all = { 'package.json': '{ "type": "module" }\n', 'app.js': appSource("'v0'"), ...files };
  for (const [name, text] of Object.entries(all)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return { dir, app: path.join(dir, 'app.js') };
}

interface Load {
  replies: string[];
  failures: string[];
  stop(): Promise<void>;
}

/** `clients` request loops, a new connection per request, until stopped. */
function startLoad(launcher: RunningLauncher, clients = 4): Load {
  const replies: string[] = [];
  const failures: string[] = [];
  let running = true;
  const loop = async (): Promise<void> => {
    while (running) {
      try {
        const reply = await withDeadline(request(launcher.port), 5_000, 'a request');
        if (reply.status === 200) replies.push(reply.text);
        else failures.push(`HTTP ${reply.status}: ${reply.text}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  const loops = Array.from({ length: clients }, loop);
  return {
    replies,
    failures,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** The last `count` replies are all `version`, from at least `workers` different threads. */
function servedByEvery(load: Load, version: string, workers: number, count = 12): boolean {
  const last = load.replies.slice(-count);
  if (last.length < count || !last.every((text) => text.startsWith(`${version} `))) return false;
  return new Set(last.map((text) => text.split(' ')[1])).size >= workers;
}

function count(text: string, pattern: string | RegExp): number {
  return text.split(pattern).length - 1;
}

t.test(
  'under load, three edits: within 2 s of each, every worker serves the new reply, and no request fails',
  async (t) => {
    const { app } = appDirectory(t);
    const launcher = await startLauncher(t, ['--watch', '--workers', '2', '--balance', 'round-robin', app]);
    t.match(launcher.stdout(), /· watching /, 'the start-up line says what is watched');
    const load = startLoad(launcher);
    t.teardown(() => load.stop());
    await waitFor(() => servedByEvery(load, 'v0', 2), { timeout: 10_000, what: 'both workers serving v0' });

    const timings: number[] = [];
    for (const version of ['v1', 'v2', 'v3']) {
      const editedAt = performance.now();
      fs.writeFileSync(app, appSource(`'${version}'`));
      await waitFor(() => servedByEvery(load, version, 2), {
        timeout: 2_000,
        what: () => `every worker serving ${version} (last replies: ${load.replies.slice(-4).join(', ')})`,
      });
      timings.push(Math.round(performance.now() - editedAt));
      const reloads = timings.length;
      await waitFor(() => count(launcher.stderr(), /reloaded in \d+ ms/g) >= reloads, {
        timeout: 10_000,
        what: `reload line ${reloads}`,
      });
    }
    await load.stop();

    t.same(load.failures, [], 'no request failed');
    t.comment(
      `edit to every worker serving the new reply: ${timings.join(', ')} ms; ${load.replies.length} requests served`,
    );
    const lines = launcher
      .stderr()
      .split('\n')
      .filter((line) => line.includes('changed'));
    t.equal(lines.length, 3, 'one line per reload');
    for (const line of lines)
      t.match(line, /^socketnaut: \S*app\.js changed; reloaded in \d+ ms$/, 'it names the file and the time taken');
  },
);

t.test(
  'code that fails to load: the old reply goes on, the error is printed once with its line, and a fix brings the new reply',
  async (t) => {
    const { app } = appDirectory(t, { 'app.js': appSource("'v1'") });
    const launcher = await startLauncher(t, ['--watch', '--workers', '2', '--balance', 'round-robin', app]);
    const load = startLoad(launcher, 2);
    t.teardown(() => load.stop());
    await waitFor(() => servedByEvery(load, 'v1', 2), { timeout: 10_000, what: 'both workers serving v1' });

    fs.writeFileSync(app, appSource(''));
    await waitFor(() => count(launcher.stderr(), 'failed to load; the old workers keep serving') === 1, {
      timeout: 10_000,
      what: 'the syntax error reported',
    });
    const served = load.replies.length;
    await waitFor(() => load.replies.length >= served + 20, { timeout: 5_000, what: 'requests after the failure' });
    t.ok(servedByEvery(load, 'v1', 2, 20), 'both old workers still serve the old reply');
    t.equal(count(launcher.stderr(), `${app}:3`), 1, 'the file and line of the syntax error, once');
    t.match(launcher.stderr(), /SyntaxError: Unexpected token ';'/);

    // A throw at import fails on loading too; its stack points at the line.
    const before = launcher.stderr().length;
    fs.writeFileSync(app, appSource("(() => { throw new Error('refused at import'); })()"));
    await waitFor(() => count(launcher.stderr(), 'failed to load; the old workers keep serving') === 2, {
      timeout: 10_000,
      what: 'the throw reported',
    });
    const report = launcher.stderr().slice(before);
    t.match(report, /Error: refused at import\n\s+at /, 'the error and its stack');
    t.ok(report.includes(`${app}:3:`), 'the stack names the file and line');
    t.equal(count(report, 'refused at import'), 1, 'printed once');
    t.ok(servedByEvery(load, 'v1', 2), 'the old reply still');

    // No restart backoff: the fix is served as fast as any other change.
    const fixedAt = performance.now();
    fs.writeFileSync(app, appSource("'v2'"));
    await waitFor(() => servedByEvery(load, 'v2', 2), {
      timeout: 2_000,
      what: 'every worker serving v2 after the fix',
    });
    t.comment(`fix to every worker serving it: ${Math.round(performance.now() - fixedAt)} ms`);
    await load.stop();
    t.same(load.failures, [], 'no request failed');
    t.equal(count(launcher.stderr(), 'failed to load; the old workers keep serving'), 2, 'each failure reported once');
  },
);

t.test('a change under node_modules, .git or dist reloads nothing; one in the app does', async (t) => {
  const { dir, app } = appDirectory(t, {
    'node_modules/dep/index.js': 'export default 1;\n',
    '.git/HEAD': 'ref: refs/heads/main\n',
    'dist/app.js': '\n',
    'src/lib/util.js': 'export default 1;\n',
  });
  const launcher = await startLauncher(t, ['--watch', '--workers', '1', app]);
  fs.writeFileSync(path.join(dir, 'node_modules/dep/index.js'), 'export default 2;\n');
  fs.mkdirSync(path.join(dir, 'node_modules/new-dep'));
  fs.writeFileSync(path.join(dir, 'node_modules/new-dep/index.js'), 'export default 3;\n');
  fs.writeFileSync(path.join(dir, '.git/HEAD'), 'ref: refs/heads/other\n');
  fs.writeFileSync(path.join(dir, 'dist/app.js'), '// built\n');
  fs.writeFileSync(path.join(dir, '.app.js.swp'), 'swap');
  await observeFor(1_000);
  t.notMatch(launcher.stderr(), /changed/, 'no reload');

  // The watch is live: a file deep in the app's tree reloads it.
  fs.writeFileSync(path.join(dir, 'src/lib/util.js'), 'export default 2;\n');
  await waitFor(() => /changed; reloaded/.test(launcher.stderr()), {
    timeout: 5_000,
    what: 'a reload for src/lib/util.js',
  });
  t.match(launcher.stderr(), /socketnaut: \S*src\/lib\/util\.js changed; reloaded in \d+ ms/);
});

t.test('--watch-path replaces the app directory as what is watched', async (t) => {
  const { dir, app } = appDirectory(t, { 'config/settings.json': '{}\n' });
  const launcher = await startLauncher(t, ['--watch-path', path.join(dir, 'config'), '--workers', '1', app]);
  fs.writeFileSync(app, appSource("'v1'"));
  await observeFor(1_000);
  t.notMatch(launcher.stderr(), /changed/, 'the app module itself is not watched');
  fs.writeFileSync(path.join(dir, 'config/settings.json'), '{ "a": 1 }\n');
  await waitFor(() => /changed; reloaded/.test(launcher.stderr()), {
    timeout: 5_000,
    what: 'a reload for config/settings.json',
  });
  const reply = await request(launcher.port);
  t.match(reply.text, /^v1 /, 'the reload loaded the app module as it now is');
});

t.test("the launcher's own output, sent to a file in the watched tree, reloads nothing", async (t) => {
  const { dir, app } = appDirectory(t);
  const logFile = path.join(dir, 'launcher.log');
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(
    process.execPath,
    [cliPath, '--host', '127.0.0.1', '--port', '0', '--watch', '--workers', '1', app],
    { stdio: ['ignore', fd, fd] },
  );
  fs.closeSync(fd);
  const exited = once(child, 'exit');
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await exited;
  });
  const log = (): string => fs.readFileSync(logFile, 'utf8');
  await waitFor(() => /socketnaut: http/.test(log()), { timeout: 10_000, what: 'the start-up line in the log' });
  fs.writeFileSync(app, appSource("'v1'"));
  await waitFor(() => /changed; reloaded/.test(log()), { timeout: 5_000, what: 'the reload for app.js' });
  // Each line the reload wrote changes the log: none of them may bring another reload.
  await observeFor(1_500);
  t.equal(count(log(), /changed; reloaded/), 1, 'one reload, for app.js');
  t.match(log(), /app\.js changed; reloaded/);
});
