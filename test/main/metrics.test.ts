import { once } from 'node:events';
import net from 'node:net';
import t, { type Test } from 'tap';
import parsePrometheusTextFormat, { type MetricFamily } from 'parse-prometheus-text-format';
import { serveMetrics } from 'socketnaut';
import { fixture, request, requestJSON, startProxy, transports, waitFor, type Reply } from '../helpers.ts';
import { runLauncher, startLauncher, type RunningLauncher } from '../launcher.ts';

const app = fixture('plain-app.js').pathname;
const REQUESTS = 15;
const WORKERS = 2;

interface Scrape {
  reply: Reply;
  families: Map<string, MetricFamily>;
}

/** The launcher's metrics URL, from its start-up line. */
async function metricsURL(launcher: RunningLauncher): Promise<URL> {
  const printed = await waitFor(() => /· metrics (http:\/\/\S+)/.exec(launcher.stdout())?.[1], {
    timeout: 5000,
    what: 'the metrics URL on stdout',
  });
  return new URL(printed);
}

async function scrape(url: URL): Promise<Scrape> {
  const reply = await request(Number(url.port), { host: url.hostname, path: url.pathname });
  if (reply.status !== 200) throw new Error(`scrape: HTTP ${reply.status}: ${reply.text}`);
  return { reply, families: new Map(parsePrometheusTextFormat(reply.text).map((family) => [family.name, family])) };
}

/** Scrapes until `check` holds; rejects after `timeout` ms with the last scrape. */
function scrapeUntil(
  url: URL,
  check: (families: Map<string, MetricFamily>) => boolean,
  timeout = 5000,
): Promise<Scrape> {
  let last: Scrape | undefined;
  return waitFor(
    async () => {
      last = await scrape(url);
      return check(last.families) ? last : undefined;
    },
    { timeout, interval: 20, what: () => `metrics matching the check; the last scrape:\n${last?.reply.text}` },
  );
}

function value(families: Map<string, MetricFamily>, name: string): number {
  const family = families.get(name);
  if (family?.metrics.length !== 1 || family.metrics[0]!.value === undefined) return NaN;
  return Number(family.metrics[0]!.value);
}

function histogramCount(families: Map<string, MetricFamily>, name: string): number {
  return Number(families.get(name)?.metrics[0]?.count ?? NaN);
}

function perSlot(families: Map<string, MetricFamily>, name: string): Map<string, number> {
  return new Map(
    (families.get(name)?.metrics ?? []).map((sample) => [sample.labels?.slot ?? '', Number(sample.value)]),
  );
}

const HANDOFF = 'socketnaut_handoff_duration_seconds';

function checkWorkerGauges(t: Test, families: Map<string, MetricFamily>, workers: number): void {
  const connections = perSlot(families, 'socketnaut_worker_connections');
  t.equal(families.get('socketnaut_worker_connections')?.metrics.length, workers, 'one connections sample per worker');
  t.equal(connections.size, workers, 'each with a slot of its own');
  t.notOk(connections.has(''), 'every sample has a slot label');
  t.same([...connections.values()], Array(workers).fill(0), 'no open connection');
  const elu = perSlot(families, 'socketnaut_worker_event_loop_utilization_ratio');
  t.same([...elu.keys()].sort(), [...connections.keys()].sort(), 'event-loop use for the same slots');
  for (const [slot, ratio] of elu)
    t.ok(ratio >= 0 && ratio <= 1, `slot ${slot}: event-loop use ${ratio} within [0, 1]`);
  const heap = perSlot(families, 'socketnaut_worker_heap_used_bytes');
  t.same([...heap.keys()].sort(), [...connections.keys()].sort(), 'heap for the same slots');
  for (const [slot, bytes] of heap) t.ok(bytes > 0, `slot ${slot}: heap ${bytes} bytes`);
}

for (const transport of transports) {
  t.test(`${transport}: /metrics counts exactly what the launcher did`, async (t) => {
    const launcher = await startLauncher(t, [
      '--workers',
      String(WORKERS),
      '--transport',
      transport,
      '--metrics',
      '127.0.0.1:0',
      app,
    ]);
    const url = await metricsURL(launcher);
    t.equal(url.hostname, '127.0.0.1');
    t.equal(url.pathname, '/metrics');
    t.not(url.port, '0', 'the chosen port is printed, not 0');
    t.not(Number(url.port), launcher.port, 'a port apart from the app');

    for (let i = 0; i < REQUESTS; i++) await requestJSON(launcher.port);
    // Workers report closes and hand-off times a moment after the response has gone.
    const { reply, families } = await scrapeUntil(
      url,
      (f) =>
        histogramCount(f, HANDOFF) >= REQUESTS &&
        [...perSlot(f, 'socketnaut_worker_connections').values()].every((n) => n === 0),
    );
    t.match(reply.headers['content-type'], /^text\/plain; version=0\.0\.4/);

    t.equal(value(families, 'socketnaut_connections_accepted_total'), REQUESTS, 'accepted');
    t.equal(value(families, 'socketnaut_connections_dispatched_total'), REQUESTS, 'dispatched');
    t.equal(value(families, 'socketnaut_connections_refused_total'), 0, 'refused');
    t.equal(value(families, 'socketnaut_connections_expired_total'), 0, 'expired');
    t.equal(value(families, 'socketnaut_proxy_header_rejected_total'), 0, 'PROXY headers rejected');
    t.equal(value(families, 'socketnaut_connections_queued'), 0, 'queued now');
    t.equal(value(families, 'socketnaut_worker_restarts_total'), 0, 'restarts');
    t.equal(value(families, 'socketnaut_reloads_total'), 0, 'reloads');
    t.equal(value(families, 'socketnaut_workers'), WORKERS, 'workers');
    checkWorkerGauges(t, families, WORKERS);

    const handoff = families.get(HANDOFF)!.metrics[0]!;
    t.equal(Number(handoff.count), REQUESTS, 'one hand-off observed per connection');
    const sum = Number(handoff.sum);
    t.ok(sum > 0 && sum < REQUESTS * 10, `hand-off times add up to ${sum} s`);
    const buckets = Object.entries(handoff.buckets ?? {})
      .map(([le, count]) => [le === '+Inf' ? Infinity : Number(le), Number(count)] as const)
      .sort((a, b) => a[0] - b[0]);
    t.equal(buckets.at(-1)?.[0], Infinity, 'a +Inf bucket');
    t.equal(buckets.at(-1)?.[1], REQUESTS, 'the +Inf bucket holds every hand-off');
    t.ok(
      buckets.every(([, count], i) => i === 0 || count >= buckets[i - 1]![1]),
      'buckets are cumulative',
    );
    t.ok(
      buckets[0]![0] <= 0.001,
      `the finest bucket (${buckets[0]![0]}) resolves sub-millisecond hand-offs, so bounds are in seconds`,
    );

    // Scraping twice does not add to the counters: they mirror the proxy's totals.
    const again = await scrape(url);
    t.equal(value(again.families, 'socketnaut_connections_accepted_total'), REQUESTS, 'accepted, scraped again');

    launcher.child.kill('SIGHUP');
    await waitFor(() => launcher.stderr().includes('reload complete'), 15_000);
    const reloaded = await scrapeUntil(url, (f) => value(f, 'socketnaut_workers') === WORKERS);
    t.equal(value(reloaded.families, 'socketnaut_reloads_total'), 1, 'reloads after SIGHUP');
    t.equal(value(reloaded.families, 'socketnaut_worker_restarts_total'), 0, 'a reload is not a restart');
    t.equal(value(reloaded.families, 'socketnaut_connections_accepted_total'), REQUESTS, 'a reload accepts nothing');
    checkWorkerGauges(t, reloaded.families, WORKERS);
  });
}

t.test('metric names follow the Prometheus conventions', async (t) => {
  const launcher = await startLauncher(t, ['--workers', '1', '--metrics', '127.0.0.1:0', app]);
  const { families } = await scrape(await metricsURL(launcher));
  t.ok(families.size >= 10, `${families.size} metric families`);
  for (const family of families.values()) {
    t.match(family.name, /^socketnaut_[a-z_]+$/, `${family.name}: socketnaut_ prefix, snake case`);
    t.ok(family.help.length > 0, `${family.name}: has help`);
    if (family.type === 'COUNTER') t.match(family.name, /_total$/, `${family.name}: a counter ends in _total`);
    else t.notMatch(family.name, /_total$/, `${family.name}: only counters end in _total`);
    if (family.type === 'HISTOGRAM')
      t.match(family.name, /_seconds$/, `${family.name}: a histogram of durations is in seconds`);
    t.notMatch(family.name, /_(ms|milliseconds|kb|mb)(_|$)/, `${family.name}: base units`);
  }
  t.equal(families.get(HANDOFF)?.type, 'HISTOGRAM');
  t.equal(families.get('socketnaut_workers')?.type, 'GAUGE');
  t.equal(families.get('socketnaut_worker_heap_used_bytes')?.type, 'GAUGE');
});

t.test('/metrics lives on the metrics port only, and answers nothing else', async (t) => {
  const launcher = await startLauncher(t, ['--workers', '1', '--metrics', '127.0.0.1:0', app]);
  const url = await metricsURL(launcher);
  const metricsPort = Number(url.port);

  const onApp = await request(launcher.port, { path: '/metrics' });
  t.equal(onApp.status, 200);
  t.match(onApp.headers['content-type'], /^application\/json/, "the app's own answer");
  t.type(JSON.parse(onApp.text).threadId, 'number');
  t.notMatch(onApp.text, /socketnaut_|# TYPE/, 'no Prometheus text on the app port');

  const ok = await request(metricsPort, { path: '/metrics?debug=1' });
  t.equal(ok.status, 200, 'a query string is ignored');
  t.match(ok.text, /^# HELP socketnaut_/m);

  const others: [string, string][] = [
    ['GET', '/'],
    ['GET', '/metrics/'],
    ['GET', '/metricsx'],
    ['GET', '/metrics/extra'],
    ['GET', '/favicon.ico'],
    ['POST', '/metrics'],
    ['PUT', '/metrics'],
    ['DELETE', '/metrics'],
  ];
  for (const [method, path] of others) {
    const reply = await request(metricsPort, { method, path });
    t.equal(reply.status, 404, `${method} ${path}: 404`);
    t.notMatch(reply.text, /socketnaut_/, `${method} ${path}: no metrics in the body`);
  }
});

t.test(
  'serveMetrics() from code: hand-off times only with measureHandoffLatency, and close() frees the port',
  async (t) => {
    for (const measureHandoffLatency of [true, false]) {
      const { proxy, port } = await startProxy(t, {
        workerURL: fixture('http-server.js'),
        workerCount: 1,
        measureHandoffLatency,
      });
      const metrics = await serveMetrics(proxy, 0, '127.0.0.1');
      t.teardown(() => metrics.close());
      const url = new URL(metrics.url);
      t.match(metrics.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      for (let i = 0; i < 3; i++) await requestJSON(port);
      const expected = measureHandoffLatency ? 3 : 0;
      const { families } = await scrapeUntil(
        url,
        (f) => value(f, 'socketnaut_connections_accepted_total') === 3 && histogramCount(f, HANDOFF) >= expected,
      );
      t.equal(
        histogramCount(families, HANDOFF),
        expected,
        `measureHandoffLatency ${measureHandoffLatency}: ${expected} hand-offs observed`,
      );
      t.equal(proxy.listenerCount('handoff-latency'), 1, 'the metrics server listens for hand-off times');
      await metrics.close();
      t.equal(proxy.listenerCount('handoff-latency'), 0, 'close() stops listening');
      await t.rejects(
        request(Number(url.port), { path: '/metrics' }),
        { code: 'ECONNREFUSED' },
        'close() frees the port',
      );
    }
  },
);

const badMetrics: [string, RegExp][] = [
  ['abc', /--metrics must be \[host:\]port, not 'abc'/],
  ['70000', /--metrics must be \[host:\]port, not '70000'/],
  ['127.0.0.1:', /--metrics must be \[host:\]port, not '127\.0\.0\.1:'/],
  [':9100', /--metrics must be \[host:\]port, not ':9100'/],
  ['::1:9100', /--metrics must be \[host:\]port, not '::1:9100'/],
  ['-1', /--metrics must be \[host:\]port, not '-1'/],
  ['', /--metrics must be \[host:\]port, not ''/],
];
for (const [flag, message] of badMetrics) {
  t.test(`--metrics '${flag}' is a usage error`, async (t) => {
    const result = await runLauncher(['--port', '0', '--host', '127.0.0.1', `--metrics=${flag}`, app]);
    t.equal(result.code, 2);
    t.match(result.stderr, message);
    t.equal(result.stdout, '', 'nothing started');
  });
}

t.test('a metrics port in use is reported and the launcher exits 1', async (t) => {
  const blocker = net.createServer().listen(0, '127.0.0.1');
  t.teardown(() => blocker.close());
  await once(blocker, 'listening');
  const { port } = blocker.address() as net.AddressInfo;
  const result = await runLauncher([
    '--port',
    '0',
    '--host',
    '127.0.0.1',
    '--workers',
    '1',
    '--metrics',
    `127.0.0.1:${port}`,
    app,
  ]);
  t.equal(result.code, 1);
  t.match(result.stderr, new RegExp(`The address 127\\.0\\.0\\.1:${port} is already in use`));
});

t.test('a metrics address that cannot be bound is reported like the app port', async (t) => {
  // 192.0.2.1 (TEST-NET-1) is on no interface here, so binding it fails.
  const app_ = await runLauncher(['--port', '0', '--host', '192.0.2.1', '--workers', '1', app]);
  t.equal(app_.code, 1);
  t.match(app_.stderr, /Cannot listen on 192\.0\.2\.1:0: /, 'the app port: a coded, named error');
  const result = await runLauncher([
    '--port',
    '0',
    '--host',
    '127.0.0.1',
    '--workers',
    '1',
    '--metrics',
    '192.0.2.1:0',
    app,
  ]);
  t.equal(result.code, 1);
  t.match(result.stderr, /Cannot listen on 192\.0\.2\.1:0: /, 'the metrics port: the same');
});
