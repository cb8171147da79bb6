// Node refuses process.chdir() and process.umask(mask) in a worker; socketnaut makes them on the main
// thread for the worker, unless another worker asked for a different value, and setuid() and the
// like throw an error that says what to do instead.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import t, { type Test } from 'tap';
import { fixture, requestJSON, startProxy, waitFor } from '../helpers.ts';

const { callOnMainThread } = (await import(
  new URL('../../dist/lib/worker/process-apis.js', import.meta.url).href
)) as typeof import('../../lib/worker/process-apis.ts');

interface Outcome {
  value?: unknown;
  code?: string;
  message?: string;
  syscall?: string;
}

interface Seen {
  threadId: number;
  cwd: string;
  umask: number;
  atStart: Outcome | undefined;
  called: Outcome | undefined;
}

const app = fixture('process-apis.js');

/** Two new directories, `a` and `b`, each with a file `where` naming it; the test's directory and umask restored after. */
function directories(t: Test): { a: string; b: string } {
  const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'socketnaut-chdir-')));
  const [cwd, umask] = [process.cwd(), process.umask()];
  t.teardown(() => {
    process.chdir(cwd);
    process.umask(umask);
    fs.rmSync(root, { recursive: true, force: true });
  });
  const made = { a: path.join(root, 'a'), b: path.join(root, 'b') };
  for (const [name, dir] of Object.entries(made)) {
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'where'), name);
  }
  return made;
}

async function startApp(t: Test, workers: number, chdir?: string) {
  const started = await startProxy(t, {
    workerURL: app,
    minWorkers: workers,
    maxWorkers: workers,
    workerOptions: { workerData: { chdir } },
  });
  /** `pathname`, with `?arg=` and more from `query`. */
  const ask = (pathname = '/', arg?: string, query = ''): Promise<Seen> =>
    requestJSON<Seen>(started.port, {
      path: arg === undefined ? pathname : `${pathname}?arg=${encodeURIComponent(arg)}${query}`,
    });
  /** The answer of each worker to the same request. */
  const fromEach = async (pathname = '/', arg?: string, query = ''): Promise<Seen[]> => {
    const seen = new Map<number, Seen>();
    await waitFor(async () => {
      const answers = await Promise.all([ask(pathname, arg, query), ask(pathname, arg, query)]);
      for (const answer of answers) seen.set(answer.threadId, answer);
      return seen.size === workers;
    });
    return [...seen.values()];
  };
  return { ...started, ask, fromEach };
}

t.test('a chdir at start-up, by every worker to the same directory: each succeeds, and all see it', async (t) => {
  const { a } = directories(t);
  const { ask, fromEach } = await startApp(t, 2, a);
  for (const seen of await fromEach()) {
    t.same(seen.atStart, { value: null }, `worker ${seen.threadId}: process.chdir() returned`);
    t.equal(seen.cwd, a, `worker ${seen.threadId}: process.cwd() is the new directory`);
  }
  t.equal(process.cwd(), a, "the main thread's directory is the process's, changed");
  t.same((await ask('/read', 'where')).called, { value: 'a' }, 'a relative path is read from there');
});

t.test('a relative chdir goes from the current directory', async (t) => {
  const { a } = directories(t);
  const { ask } = await startApp(t, 1, a);
  const seen = await ask('/chdir', '../b');
  t.same(seen.called, { value: null }, 'process.chdir(../b) returned');
  t.equal(seen.cwd, path.join(path.dirname(a), 'b'), 'process.cwd() is the sibling directory');
});

t.test('a worker alone may change directory again, as a process may', async (t) => {
  const { a, b } = directories(t);
  const { ask } = await startApp(t, 1, a);
  const seen = await ask('/chdir', b);
  t.same(seen.called, { value: null }, 'process.chdir() returned');
  t.equal(seen.cwd, b);
  t.equal(process.cwd(), b);
});

t.test('a chdir to another directory than the other workers asked for is refused', async (t) => {
  const { a, b } = directories(t);
  const { ask } = await startApp(t, 2, a);
  const seen = await ask('/chdir', b);
  t.equal(seen.called?.code, 'SOCKETNAUT_ERR_WORKER_PROCESS_CONFLICT', 'the coded error');
  t.match(seen.called?.message, `process.chdir('${b}')`, 'the message names the call');
  t.match(seen.called?.message, `'${a}'`, 'and what the other worker asked for');
  t.equal(seen.cwd, a, 'the directory is unchanged');
  t.equal(process.cwd(), a);
});

t.test("a chdir that fails on the main thread throws the system's error in the worker", async (t) => {
  const { a } = directories(t);
  const { ask } = await startApp(t, 1, a);
  const seen = await ask('/chdir', path.join(a, 'missing'));
  t.equal(seen.called?.code, 'ENOENT');
  t.equal(seen.called?.syscall, 'chdir');
  t.equal(seen.cwd, a, 'the directory is unchanged');
});

t.test('new workers at a reload ask for the directory the old ones asked for: they start', async (t) => {
  const { a } = directories(t);
  const { proxy, fromEach } = await startApp(t, 2, a);
  const before = new Set((await fromEach()).map((seen) => seen.threadId));
  await proxy.reload({ timeout: 2000 });
  for (const seen of await fromEach()) {
    t.notOk(before.has(seen.threadId), `worker ${seen.threadId} is new`);
    t.same(seen.atStart, { value: null }, `worker ${seen.threadId}: process.chdir() returned`);
    t.equal(seen.cwd, a);
  }
});

t.test('umask(mask): made for the process, the same mask by another worker too, a different one refused', async (t) => {
  const { a } = directories(t);
  const { ask, fromEach } = await startApp(t, 2, a);
  const initial = process.umask();
  const first = await ask('/umask', '027');
  t.same(first.called, { value: initial }, 'returns the mask before');
  t.equal(process.umask(), 0o027, "the process's mask is set");
  for (const seen of await fromEach('/umask', String(0o027), '&number')) {
    t.same(seen.called, { value: 0o027 }, `worker ${seen.threadId}: the same mask, as a number`);
  }
  t.equal(process.umask(), 0o027);
  // Both workers asked for 0o027: whichever answers, the other's mask disagrees.
  const other = await ask('/umask', '077');
  t.equal(other.called?.code, 'SOCKETNAUT_ERR_WORKER_PROCESS_CONFLICT', 'a different mask is refused');
  t.match(other.called?.message, '0o27', 'naming the mask asked for before');
  t.equal(process.umask(), 0o027, 'the mask is unchanged');
  t.equal((await ask('/umask', 'rwx')).called?.code, 'ERR_INVALID_ARG_VALUE', "Node's own error for a bad mask");
});

t.test('setuid() and the like throw an error that says to run the launcher as that user', async (t) => {
  const { ask } = await startApp(t, 1);
  for (const call of ['setuid', 'setgroups']) {
    const seen = await ask(`/${call}`);
    t.equal(seen.called?.code, 'SOCKETNAUT_ERR_WORKER_CREDENTIALS', `process.${call}()`);
    t.match(seen.called?.message, /Start the launcher as the user/);
  }
});

t.test('a call the main thread does not answer in time throws a coded error', async (t) => {
  const { port1, port2 } = new MessageChannel();
  t.teardown(() => {
    port1.close();
    port2.close();
  });
  const started = performance.now();
  t.throws(() => callOnMainThread(port1, { api: 'chdir', directory: '/' }, 50), {
    code: 'SOCKETNAUT_ERR_WORKER_PROCESS_TIMEOUT',
    message: "process.chdir('/') got no answer from the main thread within 50 ms",
  });
  t.ok(performance.now() - started >= 45, 'after the timeout');
});
