import { answerProbe } from './health.ts';
import type { ServiceProxy } from './service-proxy.ts';
import { listenSideServer, type SideServer } from './side-server.ts';

export interface MetricsServer extends SideServer {
  /** `http://<address>:<port>/metrics`, as bound. */
  url: string;
}

const HANDOFF_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];
const STATUSES = ['starting', 'serving', 'stalled', 'retiring'] as const;
/** Scrapes closer together share one measurement of event-loop use, so that a second scraper, or a burst, cannot shrink its interval to nothing. */
const MIN_ELU_INTERVAL_MS = 1_000;

/**
 * Serves the proxy's metrics in Prometheus' text format at `/metrics`, on a port of its own, and the
 * probes `/ready` and `/live` there too. The proxy must have been created with measureHandoffLatency
 * for the hand-off histogram to fill. prom-client is loaded here, so only by those who ask for metrics.
 */
export async function serveMetrics(proxy: ServiceProxy, port: number, host?: string): Promise<MetricsServer> {
  const client = await import('prom-client');
  const registry = new client.Registry();
  const worker = ['slot'] as const;
  const gauge = (name: string, help: string) =>
    new client.Gauge({ name, help, labelNames: worker, registers: [registry] });
  const counter = (name: string, help: string) => new client.Counter({ name, help, registers: [registry] });

  const workerConnections = gauge('socketnaut_worker_connections', 'Open connections held by each worker.');
  const workerElu = gauge(
    'socketnaut_worker_event_loop_utilization_ratio',
    "Share of time each worker's event loop was busy since the previous scrape.",
  );
  const workerHeap = gauge('socketnaut_worker_heap_used_bytes', 'V8 heap in use in each worker.');
  const workers = new client.Gauge({ name: 'socketnaut_workers', help: 'Live worker threads.', registers: [registry] });
  const workerState = new client.Gauge({
    name: 'socketnaut_worker_state',
    help: 'Workers of each slot in each state: starting, serving, stalled (event loop stuck for 1 s or more), retiring.',
    labelNames: ['slot', 'state'] as const,
    registers: [registry],
  });
  const listener = ['address'] as const;
  const listenerWorkers = new client.Gauge({
    name: 'socketnaut_listener_workers',
    help: "Workers whose server listens on each port of the app's other servers.",
    labelNames: listener,
    registers: [registry],
  });
  const listenerAccepted = new client.Counter({
    name: 'socketnaut_listener_connections_accepted_total',
    help: "Connections accepted on each port of the app's other servers.",
    labelNames: listener,
    registers: [registry],
  });
  const queued = new client.Gauge({
    name: 'socketnaut_connections_queued',
    help: 'Connections waiting for a worker now.',
    registers: [registry],
  });
  const totals = {
    accepted: counter('socketnaut_connections_accepted_total', 'Connections accepted.'),
    dispatched: counter(
      'socketnaut_connections_dispatched_total',
      'Connections given to a worker, each re-dispatch counted again.',
    ),
    refused: counter(
      'socketnaut_connections_refused_total',
      'Connections closed at once for breaking a connection limit.',
    ),
    forwarded: counter(
      'socketnaut_connections_forwarded_total',
      'Connections the worker that accepted them moved to a less busy one (transport reuseport).',
    ),
    expired: counter(
      'socketnaut_connections_expired_total',
      'Connections closed because no worker could take them in time.',
    ),
    proxyHeaderRejected: counter(
      'socketnaut_proxy_header_rejected_total',
      'Connections closed for a missing, malformed, slow or untrusted PROXY header.',
    ),
    restarts: counter('socketnaut_worker_restarts_total', 'Workers that died and were replaced.'),
    reloads: counter('socketnaut_reloads_total', 'Rolling reloads started.'),
    stalls: counter(
      'socketnaut_worker_stalls_total',
      'Times a worker got no new connection because its event loop was stuck for 1 s.',
    ),
    stallRestarts: counter(
      'socketnaut_worker_stall_restarts_total',
      'Workers replaced because their event loop was stuck for stallTimeout.',
    ),
    memoryRestarts: counter(
      'socketnaut_worker_memory_restarts_total',
      'Workers recycled for using more heap than maxMemoryRestart.',
    ),
    memoryOverLimit: counter(
      'socketnaut_worker_memory_over_limit_total',
      'Workers over maxMemoryRestart within a minute of replacing one recycled for it: reported, not recycled again.',
    ),
  };
  const handoff = new client.Histogram({
    name: 'socketnaut_handoff_duration_seconds',
    help: "Time from accepting a connection to giving it to a worker's server.",
    buckets: HANDOFF_BUCKETS,
    registers: [registry],
  });
  const observeHandoff = (seconds: number): void => handoff.observe(seconds);
  proxy.on('handoff-latency', observeHandoff);

  // Counters mirror totals the proxy keeps, so each scrape sets them rather than adding to them.
  const setTotal = (metric: InstanceType<typeof client.Counter>, value: number): void => {
    metric.reset();
    metric.inc(value);
  };

  const render = async (): Promise<string> => {
    const stats = await proxy.stats('metrics', MIN_ELU_INTERVAL_MS);
    for (const metric of [workerConnections, workerElu, workerHeap, workerState]) metric.reset();
    // During a reload a slot briefly holds the retiring worker and its successor: add them up.
    for (const w of stats.workers) {
      const labels = { slot: String(w.slot) };
      workerConnections.inc(labels, w.connections);
      if (w.state !== 'retiring') workerElu.set(labels, w.eventLoopUtilization);
      if (w.heapUsed !== undefined) workerHeap.inc(labels, w.heapUsed);
      for (const state of STATUSES) workerState.inc({ ...labels, state }, w.status === state ? 1 : 0);
    }
    workers.set(stats.workers.length);
    listenerWorkers.reset();
    listenerAccepted.reset();
    for (const shared of stats.listeners) {
      const labels = { address: describeAddress(shared.address) };
      listenerWorkers.set(labels, shared.workers);
      listenerAccepted.inc(labels, shared.accepted);
    }
    queued.set(stats.queuedNow);
    for (const [key, metric] of Object.entries(totals)) setTotal(metric, stats[key as keyof typeof totals]);
    return registry.metrics();
  };

  const side = await listenSideServer(
    (req, res) => {
      if (answerProbe(proxy, req, res)) return;
      if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
        res.writeHead(404).end('Not found: metrics are at /metrics\n');
        return;
      }
      render().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(`${(err as Error).message}\n`),
      );
    },
    port,
    host,
  );
  return {
    server: side.server,
    url: `${side.url}/metrics`,
    close: async () => {
      proxy.off('handoff-latency', observeHandoff);
      await side.close();
    },
  };
}

function describeAddress(address: { address: string; port: number } | string | null): string {
  if (address === null || typeof address === 'string') return String(address);
  return address.address.includes(':') ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}
