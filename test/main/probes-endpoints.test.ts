import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { serveHealth, type HealthReport } from 'socketnaut';
import { fixture, request, requestJSON, startProxy, transports, waitFor, withDeadline } from '../helpers.ts';
import { healthURL, metricsURL, probe } from '../health-report.ts';
import { startLauncher } from '../launcher.ts';

const app = fixture('health-app.js').pathname;

/** A request whose headers come at once and whose body `ms` later: in the app meanwhile. */
function slowRequest(
  port: number,
  ms: number,
): { headers: Promise<void>; done: Promise<{ status: number; body: string }> } {
  let onHeaders!: () => void;
  const headers = new Promise<void>((resolve) => (onHeaders = resolve));
  const done = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/slow?ms=${ms}`, agent: false }, (res) => {
      onHeaders();
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  return { headers, done };
}

for (const transport of transports) {
  t.test(
    `${transport}: /ready goes 503 within 100 ms of SIGTERM while a slow request finishes; /live stays 200`,
    async (t) => {
      const launcher = await startLauncher(t, [
        '--workers',
        '2',
        '--transport',
        transport,
        '--health',
        '127.0.0.1:0',
        app,
      ]);
      const health = await healthURL(launcher);
      t.equal(health.hostname, '127.0.0.1', 'bound where asked');
      t.not(health.port, '0', 'the real port is printed');
      t.not(Number(health.port), launcher.port, 'a port apart from the app');

      const ready = await probe(health, '/ready');
      t.equal(ready.status, 200);
      t.same(
        {
          ready: ready.report.ready,
          live: ready.report.live,
          stopping: ready.report.stopping,
          serving: ready.report.serving,
          minWorkers: ready.report.minWorkers,
        },
        { ready: true, live: true, stopping: false, serving: 2, minWorkers: 2 },
      );
      t.same(
        ready.report.workers.map((w) => w.status),
        ['serving', 'serving'],
        "the workers' states",
      );
      t.same(ready.report.workers.map((w) => w.slot).sort(), [0, 1]);
      t.equal((await probe(health, '/live')).status, 200);

      const slow = slowRequest(launcher.port, 1500);
      await slow.headers;
      launcher.child.kill('SIGTERM');
      const signalled = performance.now();
      const notReady = await waitFor(
        async () => ((await probe(health, '/ready')).status === 503 ? performance.now() : undefined),
        {
          timeout: 1000,
          interval: 1,
          what: '/ready answering 503',
        },
      );
      t.ok(notReady - signalled <= 100, `/ready 503 ${Math.round(notReady - signalled)} ms after SIGTERM`);
      const draining = await probe(health, '/ready');
      t.equal(draining.status, 503);
      t.equal(draining.report.stopping, true, 'the report says it is stopping');
      const live = await probe(health, '/live');
      t.equal(live.status, 200, '/live answers 200 during the drain');
      t.equal(live.report.live, true);

      const finished = await withDeadline(slow.done, 5000, 'the slow request');
      t.equal(finished.status, 200, 'the slow request finished with 200');
      t.match(finished.body, /"threadId":\d+/);
      t.equal((await launcher.exited).code, 0, 'a clean exit');
    },
  );
}

t.test('HEAD works on both probes; other paths are 404, other methods 405', async (t) => {
  const launcher = await startLauncher(t, ['--workers', '1', '--health', '127.0.0.1:0', app]);
  const health = await healthURL(launcher);
  const port = Number(health.port);
  for (const path of ['/ready', '/live', '/ready?verbose=1']) {
    const get = await request(port, { path });
    t.equal(get.status, 200, `GET ${path}`);
    t.match(get.headers['content-type'], /^application\/json/);
    t.equal(get.headers['cache-control'], 'no-store');
    const head = await request(port, { path, method: 'HEAD' });
    t.equal(head.status, 200, `HEAD ${path}`);
    t.equal(head.text, '', 'no body');
    // The report holds each worker's heartbeat age, whose digits may change between the two requests.
    const length = Number(head.headers['content-length']);
    t.ok(
      Math.abs(length - get.body.length) <= 2 * (get.text.match(/"heartbeatAgeMs"/g)?.length ?? 0),
      `the length GET would send (${length}, ${get.body.length})`,
    );
  }
  for (const path of ['/', '/ready/', '/readyz', '/metrics', '/live/x', '/favicon.ico']) {
    t.equal((await request(port, { path })).status, 404, `GET ${path}: 404`);
  }
  for (const method of ['POST', 'PUT', 'DELETE']) {
    const reply = await request(port, { path: '/ready', method });
    t.equal(reply.status, 405, `${method} /ready: 405`);
    t.equal(reply.headers.allow, 'GET, HEAD');
  }
  const onApp = await requestJSON<{ threadId: number }>(launcher.port, { path: '/ready' });
  t.type(onApp.threadId, 'number', "the app's own port answers /ready as the app does");
});

t.test('the probe server takes a few connections at a time, and cuts those that send nothing', async (t) => {
  const launcher = await startLauncher(t, ['--workers', '1', '--health', '127.0.0.1:0', app]);
  const health = await healthURL(launcher);
  const started = performance.now();
  // Each reads what it is sent (a 408, for those cut), so that it sees the end.
  const sockets = Array.from({ length: 40 }, () =>
    net
      .connect(Number(health.port), '127.0.0.1')
      .on('error', () => {})
      .resume(),
  );
  t.teardown(() => sockets.forEach((socket) => socket.destroy()));
  const closedAt = sockets.map(
    (socket) => new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - started))),
  );
  const times = await withDeadline(Promise.all(closedAt), 8000, 'every idle connection closed');
  const atOnce = times.filter((ms) => ms < 500).length;
  t.ok(atOnce >= 8, `${atOnce} of 40 turned away at once: at most 32 at a time`);
  t.ok(Math.max(...times) < 8000, `the idle ones cut within ${Math.round(Math.max(...times))} ms`);
  t.equal((await probe(health, '/ready')).status, 200, 'and it still answers');
});

t.test('with --metrics, the probes are on the metrics port too', async (t) => {
  const launcher = await startLauncher(t, ['--workers', '2', '--metrics', '127.0.0.1:0', app]);
  const metrics = await metricsURL(launcher);
  t.notMatch(launcher.stdout(), /· health /, 'no probe server of its own');
  const base = new URL(`http://${metrics.host}`);
  const ready = await probe(base, '/ready');
  t.equal(ready.status, 200);
  t.equal(ready.report.serving, 2);
  t.equal((await probe(base, '/live')).status, 200);
  const page = await request(Number(metrics.port), { path: '/metrics' });
  t.equal(page.status, 200, '/metrics still there');
  t.match(page.text, /^socketnaut_worker_state\{slot="0",state="serving"\} 1$/m, 'each worker state as a gauge');
  t.match(page.text, /^socketnaut_worker_state\{slot="0",state="stalled"\} 0$/m);
  t.equal((await request(Number(metrics.port), { path: '/' })).status, 404, 'other paths are still 404');
});

t.test('serveHealth() from code: proxy.stopping and /ready follow shutdown() at once', async (t) => {
  const { proxy, port } = await startProxy(t, { workerURL: fixture('health-app.js'), workerCount: 2 });
  const server = await serveHealth(proxy, 0, '127.0.0.1');
  t.teardown(() => server.close());
  t.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const base = new URL(server.url);
  t.equal((await probe(base, '/ready')).status, 200);
  t.equal(proxy.stopping, false);
  const report: HealthReport = proxy.health();
  t.equal(report.ready, true, 'proxy.health() is what the probes answer');

  const slow = slowRequest(port, 1000);
  await slow.headers;
  const stopped = proxy.shutdown({ timeout: 5000 });
  t.equal(proxy.stopping, true, 'stopping from the call on');
  t.equal(proxy.health().ready, false, 'not ready from the call on');
  t.equal((await probe(base, '/ready')).status, 503);
  t.equal((await probe(base, '/live')).status, 200, 'still live while it drains');
  t.equal((await slow.done).status, 200);
  await stopped;
  await server.close();
  await t.rejects(request(Number(base.port), { path: '/ready' }), { code: 'ECONNREFUSED' }, 'close() frees the port');
});

t.test('/live goes 503 once no worker has turned within stallTimeout; /ready too', async (t) => {
  // The hung worker's successors cannot start: the marker file makes the app throw at start-up.
  const marker = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'socketnaut-health-')), 'fail');
  t.teardown(() => fs.rmSync(path.dirname(marker), { recursive: true, force: true }));
  const launcher = await startLauncher(
    t,
    ['--workers', '1', '--stall-timeout', '1000', '--health', '127.0.0.1:0', app],
    { HEALTH_FAIL_START_FILE: marker },
  );
  const health = await healthURL(launcher);
  t.equal((await probe(health, '/live')).status, 200);
  fs.writeFileSync(marker, '');
  void request(launcher.port, { path: '/hang' }).catch(() => {});
  const hungAt = performance.now();
  const dead = await waitFor(
    async () => ((await probe(health, '/live')).status === 503 ? performance.now() : undefined),
    {
      timeout: 3000,
      interval: 20,
      what: '/live answering 503',
    },
  );
  t.ok(dead - hungAt >= 900, `503 ${Math.round(dead - hungAt)} ms after the hang, not before stallTimeout`);
  const { report } = await probe(health, '/live');
  t.equal(report.live, false);
  // The stall is marked on the next reading of the heartbeats, within 100 ms.
  await waitFor(async () => (await probe(health, '/ready')).status === 503, {
    timeout: 500,
    what: '/ready answering 503',
  });
  t.pass('/ready: no worker serves');
});
