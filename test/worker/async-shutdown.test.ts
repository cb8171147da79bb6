// A stopping worker ends as a process does: once its app's own shutdown work is done (its event loop
// empty), at once on process.exit(), or at the latest at the shutdown timeout, with a warning naming
// what was still pending. Its 'exit' listeners run in each case.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { fixture, requestJSON, waitFor, withDeadline } from '../helpers.ts';
import { startLauncher, type RunningLauncher } from '../launcher.ts';
import { allTransports, skipUnlessSupported } from '../transport-support.ts';

const cleanupApp = fixture('async-cleanup.js').pathname;
const otelApp = fixture('otel-batch-spans.js').pathname;
const WORKERS = 2;

/** What the launcher printed: its own lines go to stderr, the proxy's warnings to stdout. */
const printed = (launcher: RunningLauncher): string => launcher.stdout() + launcher.stderr();

function markerDir(t: Test): { dir: string; markers: (prefix: string) => string[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socketnaut-async-shutdown-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    markers: (prefix) =>
      fs
        .readdirSync(dir)
        .filter((name) => name.startsWith(`${prefix}-`))
        .sort(),
  };
}

/** Requests until each of the launcher's `WORKERS` workers has answered; their thread ids. */
async function reachEveryWorker(launcher: RunningLauncher): Promise<Set<number>> {
  const seen = new Set<number>();
  await waitFor(
    async () => {
      seen.add((await requestJSON<{ threadId: number }>(launcher.port)).threadId);
      return seen.size >= WORKERS;
    },
    { what: () => `every worker answering (seen ${[...seen].join(', ')})` },
  );
  return seen;
}

async function reload(launcher: RunningLauncher): Promise<void> {
  const before = launcher.stderr().split('reload complete').length;
  launcher.child.kill('SIGHUP');
  await waitFor(() => launcher.stderr().split('reload complete').length > before, {
    timeout: 15_000,
    what: () => `the reload to complete\n${launcher.stderr()}`,
  });
}

for (const transport of allTransports) {
  const skip = skipUnlessSupported(transport);
  t.test(`${transport}: at a stop, every worker's app finishes its async cleanup`, { skip }, async (t) => {
    const { dir, markers } = markerDir(t);
    const launcher = await startLauncher(t, [cleanupApp, '--workers', String(WORKERS), '--transport', transport], {
      MARKER_DIR: dir,
    });
    await reachEveryWorker(launcher);
    launcher.child.kill('SIGTERM');
    const { code } = await launcher.exited;
    t.equal(code, 0, 'exit code 0', { stderr: launcher.stderr() });
    t.equal(markers('cleanup').length, WORKERS, `a file per worker: ${markers('cleanup').join(', ')}`);
    t.equal(markers('exit').length, WORKERS, "each worker's 'exit' listeners ran");
    t.notMatch(printed(launcher), /pending/, 'no worker was stopped with work pending');
  });

  t.test(`${transport}: at a reload, every old worker's app finishes its async cleanup`, { skip }, async (t) => {
    const { dir, markers } = markerDir(t);
    const launcher = await startLauncher(t, [cleanupApp, '--workers', String(WORKERS), '--transport', transport], {
      MARKER_DIR: dir,
    });
    const old = await reachEveryWorker(launcher);
    await reload(launcher);
    const written = markers('cleanup');
    t.same(written, [...old].map((id) => `cleanup-${id}`).sort(), 'a file per old worker, once the reload completes');
    t.equal(markers('exit').length, WORKERS, "each old worker's 'exit' listeners ran");
    launcher.child.kill('SIGTERM');
    t.equal((await launcher.exited).code, 0);
    t.equal(markers('cleanup').length, 2 * WORKERS, 'and a file per new worker at the stop');
  });
}

t.test('a pending timer that never fires is cut at the shutdown timeout, with a warning naming it', async (t) => {
  const { dir, markers } = markerDir(t);
  const shutdownTimeout = 1500;
  const launcher = await startLauncher(
    t,
    [cleanupApp, '--workers', String(WORKERS), '--shutdown-timeout', String(shutdownTimeout)],
    { MARKER_DIR: dir, CLEANUP: 'forever' },
  );
  await reachEveryWorker(launcher);
  const signalled = performance.now();
  launcher.child.kill('SIGTERM');
  const { code } = await withDeadline(launcher.exited, 10_000, 'the launcher to exit');
  const took = performance.now() - signalled;
  t.equal(code, 0, 'exit code 0', { stderr: launcher.stderr() });
  t.ok(took >= shutdownTimeout, `stopped no sooner than the shutdown timeout (${Math.round(took)} ms)`);
  t.equal(markers('cleanup').length, WORKERS, 'the cleanup that could finish did');
  t.equal(markers('late').length, 0, 'the timer never fired');
  t.equal(markers('exit').length, WORKERS, "each worker's 'exit' listeners ran");
  const warnings = printed(launcher).match(/stopped at the shutdown timeout.*pending.*Timeout.*/g) ?? [];
  t.equal(warnings.length, WORKERS, `a warning per worker naming the Timeout: ${warnings.join(' | ')}`, {
    printed: printed(launcher),
  });
});

t.test(
  'a server.close(cb) after the server has closed calls cb with ERR_SERVER_NOT_RUNNING, as Node does',
  async (t) => {
    const { dir, markers } = markerDir(t);
    const launcher = await startLauncher(t, [cleanupApp, '--workers', String(WORKERS)], {
      MARKER_DIR: dir,
      CLEANUP: 'close-late',
    });
    const workers = await reachEveryWorker(launcher);
    launcher.child.kill('SIGTERM');
    t.equal((await withDeadline(launcher.exited, 10_000, 'the launcher to exit')).code, 0);
    t.same(
      markers('cleanup'),
      [...workers].map((id) => `cleanup-ERR_SERVER_NOT_RUNNING-${id}`).sort(),
      "every worker's callback ran, with the error",
    );
  },
);

t.test('an app that calls process.exit() in its SIGTERM listener ends at once', async (t) => {
  const { dir, markers } = markerDir(t);
  // Long enough that waiting for it would show.
  const shutdownTimeout = 20_000;
  const launcher = await startLauncher(
    t,
    [cleanupApp, '--workers', String(WORKERS), '--shutdown-timeout', String(shutdownTimeout)],
    { MARKER_DIR: dir, CLEANUP: 'exit' },
  );
  await reachEveryWorker(launcher);
  const signalled = performance.now();
  launcher.child.kill('SIGTERM');
  const { code } = await withDeadline(launcher.exited, 10_000, 'the launcher to exit');
  const took = performance.now() - signalled;
  t.equal(code, 0, 'exit code 0', { stderr: launcher.stderr() });
  t.ok(took < 5000, `it did not wait for its pending timer (${Math.round(took)} ms)`);
  t.equal(markers('exit').length, WORKERS, "each worker's 'exit' listeners ran");
  t.notMatch(printed(launcher), /pending/, 'no warning');
});

t.test("OpenTelemetry's batch span processor exports every worker's last spans, at a reload and a stop", async (t) => {
  const { dir } = markerDir(t);
  const spansFile = path.join(dir, 'spans.jsonl');
  const launcher = await startLauncher(t, [otelApp, '--workers', String(WORKERS)], { SPANS_FILE: spansFile });
  const served = new Map<number, number>();
  const serve = async (count: number): Promise<void> => {
    for (let i = 0; i < count; i++) {
      const { threadId } = await requestJSON<{ threadId: number }>(launcher.port);
      served.set(threadId, (served.get(threadId) ?? 0) + 1);
    }
  };
  await serve(20);
  await reload(launcher);
  await serve(20);
  launcher.child.kill('SIGTERM');
  t.equal((await launcher.exited).code, 0, 'exit code 0', { stderr: launcher.stderr() });

  const exported = new Map<number, number>();
  const lines = fs.existsSync(spansFile) ? fs.readFileSync(spansFile, 'utf8').trim().split('\n') : [];
  for (const line of lines.filter(Boolean)) {
    const { threadId } = JSON.parse(line) as { threadId: number };
    exported.set(threadId, (exported.get(threadId) ?? 0) + 1);
  }
  t.ok(served.size >= 2, `requests reached ${served.size} workers`);
  t.same(
    Object.fromEntries([...exported].sort()),
    Object.fromEntries([...served].sort()),
    'a span per request, from every worker, in the file',
  );
});
