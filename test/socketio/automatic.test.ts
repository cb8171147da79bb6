import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { fixture, requestJSON, startProxy } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';
import { ask, clientsOnEveryWorker, next, record } from '../socketio.ts';

// In a ServiceProxy's worker, a Socket.IO server left with the in-memory adapter gets socketnaut's,
// however the app loads socket.io; one that sets its own keeps it; an app without Socket.IO loads
// none of it.
for (const app of ['app.js', 'app.cjs']) {
  t.test(
    `${app === 'app.js' ? 'ESM' : 'CommonJS'}: an app that imports nothing of socketnaut broadcasts to both workers`,
    async (t) => {
      const { port } = await startProxy(t, {
        workerURL: fixture(`socketio/${app}`),
        workerCount: 2,
        balance: 'round-robin',
      });
      const byThread = await clientsOnEveryWorker(t, port, 2, 1);
      const [[, [a]], [, [b]]] = [...byThread];
      t.match(await a!.socket.emitWithAck('adapter'), /^WorkerThreadsAdapter/, "the server has socketnaut's adapter");
      const heard = next(b!, 'news');
      await ask(a!, 'emit', 'hello');
      t.same(await heard, ['hello', a!.threadId], "a broadcast reached the other worker's client");
    },
  );
}

t.test('under the launcher, an app that imports nothing of socketnaut broadcasts to both workers', async (t) => {
  const { port } = await startLauncher(t, [
    fixture('socketio/app.cjs').pathname,
    '--workers',
    '2',
    '--balance',
    'round-robin',
  ]);
  const [[, [a]], [, [b]]] = [...(await clientsOnEveryWorker(t, port, 2, 1))];
  const heard = next(b!, 'news');
  await ask(a!, 'emit', 'launched');
  t.same(await heard, ['launched', a!.threadId]);
});

t.test('--socketio-adapter off keeps Socket.IO’s in-memory adapter, each worker’s broadcast its own', async (t) => {
  const { port } = await startLauncher(t, [
    fixture('socketio/app.cjs').pathname,
    '--workers',
    '2',
    '--socketio-adapter',
    'off',
  ]);
  const [[, [a]], [, [b]]] = [...(await clientsOnEveryWorker(t, port, 2, 1))];
  t.notMatch(await a!.socket.emitWithAck('adapter'), /^WorkerThreadsAdapter/, 'the in-memory adapter');
  const heard: unknown[] = [];
  b!.socket.on('news', (value: unknown) => heard.push(value));
  await ask(a!, 'emit', 'alone');
  await ask(b!, 'emit', 'here');
  t.same(heard, ['here'], "a broadcast reaches only its own worker's clients");
});

t.test("two Socket.IO servers of one app each reach their own clients on every worker, not each other's", async (t) => {
  const { port } = await startProxy(t, {
    workerURL: fixture('socketio/two-servers.js'),
    workerCount: 2,
    balance: 'round-robin',
  });
  const first = [...(await clientsOnEveryWorker(t, port, 2, 1)).values()].flat();
  const second = [...(await clientsOnEveryWorker(t, port, 2, 1, { path: '/second' })).values()].flat();
  const heardBySecond = second.map((client) => record(client, 'news'));
  const heard = first.map((client) => next(client, 'news'));
  await ask(first[0]!, 'emit', 'first');
  t.equal((await Promise.all(heard)).length, 2, "the first server's broadcast reached its clients on both workers");
  t.same(
    (await ask<string[]>(second[0]!, 'fetch', null)).sort(),
    second.map((client) => client.socket.id).sort(),
    "the second server's fetchSockets() counts its own clients on both workers, only",
  );
  // Sent after the first server's broadcast, from the same worker, this comes after it.
  const flushed = second.map((client) => next(client, 'news'));
  await ask(second.find((client) => client.threadId === first[0]!.threadId)!, 'emit', 'second');
  await Promise.all(flushed);
  t.same(
    heardBySecond.map((heard) => heard.map(([payload]) => payload)),
    second.map(() => ['second']),
    "the second server's clients did not hear the first's",
  );
});

for (const how of ['option', 'method']) {
  t.test(
    `an app that sets its own adapter (${how === 'option' ? 'the adapter option' : 'io.adapter()'}) keeps it`,
    async (t) => {
      const { port } = await startProxy(t, {
        workerURL: fixture('socketio/own-adapter.js'),
        workerCount: 2,
        balance: 'round-robin',
        workerOptions: { workerData: { how } },
      });
      const byThread = await clientsOnEveryWorker(t, port, 2, 1);
      const [[, [a]], [, [b]]] = [...byThread];
      t.equal(await a!.socket.emitWithAck('adapter'), 'OwnAdapter', "the server has the app's adapter");
      // With the app's in-memory adapter, a broadcast stays in its worker: no adapter of socketnaut's,
      // left over from the server's construction, hands it on.
      let reached = false;
      b!.socket.on('news', () => {
        reached = true;
      });
      const own = next(a!, 'news');
      await ask(a!, 'emit', 'local');
      await own;
      t.same(await ask(b!, 'fetch', null), [b!.socket.id], "the other worker's server knows only its own sockets");
      t.equal(reached, false, 'a broadcast did not leave its worker');
    },
  );
}

for (const load of ['import', 'require']) {
  for (const enabled of [true, false]) {
    t.test(
      `turned ${enabled ? 'on' : 'off'}, a server made after ${load}('socket.io') has the ${enabled ? "workers'" : 'in-memory'} adapter`,
      async (t) => {
        const worker = new Worker(fixture('socketio/default-switch.js'), { workerData: { enabled, load } });
        t.teardown(() => worker.terminate());
        const [adapter] = await once(worker, 'message');
        t.match(adapter, enabled ? /^WorkerThreadsAdapter/ : /^Adapter$/);
      },
    );
  }
}

// tsx, and the APM agents that instrument imports, put asynchronous hooks in place (module.register()).
const asyncHooks = `data:text/javascript,${encodeURIComponent(
  'import { register } from "node:module"; register("data:text/javascript,export async function load(url, context, next) { return next(url, context); }");',
)}`;

t.test(
  "with another tool's asynchronous module hooks in place, import('socket.io') still gets the adapter",
  async (t) => {
    const worker = new Worker(fixture('socketio/default-switch.js'), {
      workerData: { enabled: true, load: 'import' },
      execArgv: [...process.execArgv, '--import', asyncHooks],
    });
    t.teardown(() => worker.terminate());
    const [adapter] = await once(worker, 'message');
    t.match(adapter, /^WorkerThreadsAdapter/);
  },
);

t.test('the worker of an app without Socket.IO loads none of it, nor the adapter', async (t) => {
  const { port } = await startProxy(t, { workerURL: fixture('socketio/modules-loaded.js'), workerCount: 1 });
  t.same(await requestJSON<string[]>(port), []);
});

t.test('the worker of an app that loads Socket.IO late loads the adapter then', async (t) => {
  const { port } = await startProxy(t, {
    workerURL: fixture('socketio/modules-loaded.js'),
    workerCount: 1,
    workerOptions: { workerData: { socketio: true } },
  });
  const loaded = await requestJSON<string[]>(port);
  for (const file of [
    'socket.io/dist/index.js',
    'socket.io-adapter/dist/index.js',
    'dist/lib/socketio/default-adapter.js',
  ])
    t.ok(
      loaded.some((each) => each.endsWith(file)),
      file,
    );
});
