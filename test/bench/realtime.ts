// The realtime part of `npm run bench` (`npm run bench -- --only realtime`): one Socket.IO app
// (realtime-handlers.js) alone in one process, on node:cluster as Socket.IO documents it
// (@socket.io/sticky and @socket.io/cluster-adapter), and under socketnaut's launcher, which it does
// not know of. Each round takes every configuration in turn through three measurements:
// - sessions: loops that each set up a session (handshake over long-polling, the upgrade to
//   WebSocket, Socket.IO's CONNECT) and close it, for the round's duration;
// - fan-out: `clients` clients connect, and one of them emits a broadcast that the server sends to
//   all (io.emit), with WINDOW broadcasts in flight: deliveries per second, the most it sustains;
// - latency: the same clients, one broadcast every 1/rate s, each stamped with the time it was
//   sent: how long it took to reach each client.
import { createRequire } from 'node:module';
import { median, treeRssMB } from './helpers.ts';
import type { ConnectResult, LatenciesResult, SessionsResult, Usage } from './realtime-load.ts';
import {
  LoadProcess,
  type RealtimeConfig,
  type RealtimeServer,
  killServersOnExit,
  realtimeConfigs,
  startRealtimeServer,
  stopRealtimeServer,
} from './realtime-processes.ts';

export interface RealtimeOptions {
  rounds: number;
  durationS: number;
  workers: number;
  /** Clients that receive each broadcast. */
  clients: number;
  /** Broadcasts a second in the latency measurement. */
  broadcastRate: number;
  /** Sessions set up at once in the sessions measurement. */
  sessionConcurrency: number;
  loadProcesses: number;
  /** Clients open with WebSocket at once, as socket.io-client with `transports: ['websocket']`: no long-polling. */
  websocketOnly: boolean;
  /** Every client connects from 127.0.0.1, as clients behind one NAT or proxy; otherwise each from its own address. */
  oneAddress: boolean;
}

/** Broadcasts in flight while fan-out is measured: enough to keep every worker busy, few enough not to queue. */
const WINDOW = 8;
const WARM_UP_MS = 1000;
/** How long the last broadcasts may take to arrive, and the longest a broadcast may stall. */
const DRAIN_MS = 5000;
const COMMAND_MARGIN_MS = 30_000;

interface Round {
  sessionsPerSecond: number;
  sessionErrors: number;
  /** The first error of a session set-up, in either measurement. */
  firstSessionError: string | undefined;
  /** Sessions of the fan-out's clients that failed to set up, and were set up again. */
  connectErrors: number;
  deliveriesPerSecond: number;
  p50ms: number;
  p99ms: number;
  lost: number;
  /** The busiest load process's CPU time, in % of one core, in each measurement. */
  loadCpu: { sessions: number; fanOut: number; latency: number };
  rssMB: number;
  byWorker: Record<string, number>;
}

export interface RealtimeFigures {
  sessionsPerSecond: number;
  deliveriesPerSecond: number;
  p50ms: number;
  p99ms: number;
  sessionErrors: number;
  connectErrors: number;
  lost: number;
  loadCpu: { sessions: number; fanOut: number; latency: number };
  rssMB: number;
  /** Clients by worker, in the last round. */
  byWorker: number[];
}

export interface RealtimeSummary {
  transport: string | undefined;
  figures: Partial<Record<RealtimeConfig, RealtimeFigures>>;
  failures: Partial<Record<RealtimeConfig, string>>;
}

const now = (): number => performance.now();

/** Shares `total` out over the load processes. */
function share(total: number, index: number, count: number): number {
  return Math.floor(total / count) + (index < total % count ? 1 : 0);
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]! : Number.NaN;
}

function cpuPercent(results: { cpuUs: number }[], ms: number): number {
  return Math.max(...results.map((r) => r.cpuUs / 10 / ms));
}

async function measureSessions(loads: LoadProcess[], port: number, options: RealtimeOptions, ms: number) {
  const results = await Promise.all(
    loads.map((load, i) =>
      load.request<SessionsResult>(
        { cmd: 'sessions', port, concurrency: share(options.sessionConcurrency, i, loads.length), ms },
        ms + COMMAND_MARGIN_MS,
      ),
    ),
  );
  return {
    sessionsPerSecond: results.reduce((sum, r) => sum + r.sessions, 0) / (ms / 1000),
    sessionErrors: results.reduce((sum, r) => sum + r.errors, 0),
    firstSessionError: results.find((r) => r.firstError)?.firstError,
    cpu: cpuPercent(results, ms),
  };
}

/**
 * Tracks broadcasts until each has reached every client of every load process; `complete` is
 * called with each seq that has, and `stalled` once none has completed for DRAIN_MS.
 */
function trackDeliveries(loads: LoadProcess[], complete: (seq: number) => void, stalled: () => void): () => void {
  const reported = new Map<number, number>();
  let lastProgress = now();
  for (const load of loads) {
    load.onDelivered = (seq) => {
      lastProgress = now();
      const count = (reported.get(seq) ?? 0) + 1;
      if (count < loads.length) return void reported.set(seq, count);
      reported.delete(seq);
      complete(seq);
    };
  }
  const watchdog = setInterval(() => now() - lastProgress > DRAIN_MS && stalled(), 250).unref();
  return () => {
    clearInterval(watchdog);
    for (const load of loads) load.onDelivered = () => {};
  };
}

/** The most deliveries a second, with WINDOW broadcasts in flight, for `ms`; the next unused seq. */
async function measureFanOut(loads: LoadProcess[], clients: number, firstSeq: number, ms: number) {
  await Promise.all(loads.map((load) => load.request({ cmd: 'track' }, COMMAND_MARGIN_MS)));
  let seq = firstSeq;
  let completed = 0;
  const start = now();
  let lastCompletion = start;
  await new Promise<void>((resolve, reject) => {
    const emit = (): void => loads[0]!.send({ cmd: 'emit', seq: seq++ });
    const stop = trackDeliveries(
      loads,
      () => {
        completed++;
        lastCompletion = now();
        if (lastCompletion - start < ms) emit();
        else if (completed === seq - firstSeq) {
          stop();
          resolve();
        }
      },
      () => {
        stop();
        reject(new Error(`fan-out: a broadcast has not reached all ${clients} clients for ${DRAIN_MS} ms`));
      },
    );
    for (let i = 0; i < WINDOW; i++) emit();
  });
  const cpu = await Promise.all(loads.map((load) => load.request<Usage>({ cmd: 'usage' }, COMMAND_MARGIN_MS)));
  return {
    deliveriesPerSecond: (completed * clients) / ((lastCompletion - start) / 1000),
    cpu: cpuPercent(cpu, lastCompletion - start),
    nextSeq: seq,
  };
}

/** Delivery latency at `rate` broadcasts a second for `ms`. */
async function measureLatency(loads: LoadProcess[], clients: number, firstSeq: number, rate: number, ms: number) {
  await Promise.all(loads.map((load) => load.request({ cmd: 'track' }, COMMAND_MARGIN_MS)));
  let completed = 0;
  let emitted = Number.POSITIVE_INFINITY;
  let stop = (): void => {};
  const drained = new Promise<void>((resolve) => {
    stop = trackDeliveries(
      loads,
      () => ++completed >= emitted && resolve(),
      () => resolve(),
    );
  });
  const start = now();
  emitted = await loads[0]!.request<number>({ cmd: 'emitAtRate', firstSeq, rate, ms }, ms + COMMAND_MARGIN_MS);
  if (completed < emitted) await drained;
  stop();
  const elapsed = now() - start;
  const results = await Promise.all(
    loads.map((load) => load.request<LatenciesResult>({ cmd: 'latencies' }, COMMAND_MARGIN_MS)),
  );
  const latencies = new Float64Array(results.reduce((sum, r) => sum + r.latencies.length, 0));
  let offset = 0;
  for (const r of results) {
    latencies.set(r.latencies, offset);
    offset += r.latencies.length;
  }
  latencies.sort();
  return {
    p50ms: percentile(latencies, 50),
    p99ms: percentile(latencies, 99),
    lost: emitted * clients - results.reduce((sum, r) => sum + r.delivered, 0),
    cpu: cpuPercent(results, elapsed),
    nextSeq: firstSeq + emitted,
  };
}

async function measureRound(
  loads: LoadProcess[],
  server: RealtimeServer,
  options: RealtimeOptions,
  ms: number,
): Promise<Round> {
  const sessions = await measureSessions(loads, server.port, options, ms);
  const connected = await Promise.all(
    loads.map((load, i) =>
      load.request<ConnectResult>(
        { cmd: 'connect', port: server.port, clients: share(options.clients, i, loads.length) },
        COMMAND_MARGIN_MS * 2,
      ),
    ),
  );
  const connectErrors = connected.reduce((sum, r) => sum + r.errors, 0);
  const byWorker: Record<string, number> = {};
  for (const { byWorker: counts } of connected) {
    for (const [worker, count] of Object.entries(counts)) byWorker[worker] = (byWorker[worker] ?? 0) + count;
  }
  let rssMB = treeRssMB(server.child.pid!);
  const sampler = setInterval(() => (rssMB = Math.max(rssMB, treeRssMB(server.child.pid!))), 250).unref();
  try {
    const fanOut = await measureFanOut(loads, options.clients, 1, ms);
    const latency = await measureLatency(loads, options.clients, fanOut.nextSeq, options.broadcastRate, ms);
    return {
      sessionsPerSecond: sessions.sessionsPerSecond,
      sessionErrors: sessions.sessionErrors,
      firstSessionError: sessions.firstSessionError ?? connected.find((r) => r.firstError)?.firstError,
      connectErrors,
      deliveriesPerSecond: fanOut.deliveriesPerSecond,
      p50ms: latency.p50ms,
      p99ms: latency.p99ms,
      lost: latency.lost,
      loadCpu: { sessions: sessions.cpu, fanOut: fanOut.cpu, latency: latency.cpu },
      rssMB,
      byWorker,
    };
  } finally {
    clearInterval(sampler);
    await Promise.all(loads.map((load) => load.request({ cmd: 'disconnect' }, COMMAND_MARGIN_MS).catch(() => {})));
  }
}

function summarize(rounds: Round[]): RealtimeFigures {
  const middle = (pick: (round: Round) => number): number => median(rounds.map(pick));
  return {
    sessionsPerSecond: middle((r) => r.sessionsPerSecond),
    deliveriesPerSecond: middle((r) => r.deliveriesPerSecond),
    p50ms: middle((r) => r.p50ms),
    p99ms: middle((r) => r.p99ms),
    sessionErrors: rounds.reduce((sum, r) => sum + r.sessionErrors, 0),
    connectErrors: rounds.reduce((sum, r) => sum + r.connectErrors, 0),
    lost: rounds.reduce((sum, r) => sum + r.lost, 0),
    loadCpu: {
      sessions: middle((r) => r.loadCpu.sessions),
      fanOut: middle((r) => r.loadCpu.fanOut),
      latency: middle((r) => r.loadCpu.latency),
    },
    rssMB: middle((r) => r.rssMB),
    byWorker: Object.values(rounds.at(-1)!.byWorker).sort((a, b) => b - a),
  };
}

function describe(config: RealtimeConfig, round: Round): string {
  const failed = round.sessionErrors + round.connectErrors;
  const errors = failed ? `, ${failed} failed session set-ups (${round.firstSessionError})` : '';
  const lost = round.lost ? `, ${round.lost} deliveries lost` : '';
  return (
    `${config}: ${round.sessionsPerSecond.toFixed(0)} sessions/s, ${round.deliveriesPerSecond.toFixed(0)} deliveries/s, ` +
    `p99 ${round.p99ms.toFixed(2)} ms${errors}${lost}`
  );
}

export async function measureRealtime(options: RealtimeOptions): Promise<RealtimeSummary> {
  const release = killServersOnExit();
  const servers = new Map<RealtimeConfig, RealtimeServer>();
  const failures: Partial<Record<RealtimeConfig, string>> = {};
  const rounds = new Map<RealtimeConfig, Round[]>(realtimeConfigs.map((config) => [config, []]));
  let loads = Array.from({ length: options.loadProcesses }, (_, i) => new LoadProcess(i));
  const fail = async (config: RealtimeConfig, err: Error): Promise<void> => {
    failures[config] = err.message;
    console.error(`realtime ${config} failed: ${err.message}`);
    const server = servers.get(config);
    servers.delete(config);
    if (server) await stopRealtimeServer(server);
    // A load process that died, or is still busy with the failed measurement, is replaced.
    await Promise.all(loads.map((load) => load.stop()));
    loads = Array.from({ length: options.loadProcesses }, (_, i) => new LoadProcess(i));
  };
  try {
    for (const config of realtimeConfigs) {
      try {
        servers.set(config, await startRealtimeServer(config, options.workers));
      } catch (err) {
        await fail(config, err as Error);
      }
    }
    // Round 0 warms every configuration up, and is not counted.
    for (let round = 0; round <= options.rounds; round++) {
      for (const config of realtimeConfigs) {
        const server = servers.get(config);
        if (!server) continue;
        try {
          const result = await measureRound(loads, server, options, round ? options.durationS * 1000 : WARM_UP_MS);
          if (round) rounds.get(config)!.push(result);
          console.error(`realtime ${round ? `round ${round}` : 'warm-up'} ${describe(config, result)}`);
        } catch (err) {
          await fail(config, err as Error);
        }
      }
    }
    const figures: Partial<Record<RealtimeConfig, RealtimeFigures>> = {};
    for (const [config, list] of rounds) if (list.length && !failures[config]) figures[config] = summarize(list);
    return { transport: servers.get('socketnaut')?.transport, figures, failures };
  } finally {
    await Promise.all([...servers.values()].map(stopRealtimeServer));
    await Promise.all(loads.map((load) => load.stop()));
    release();
  }
}

const rows = [
  { figure: 'sessions/s', pick: (f: RealtimeFigures) => f.sessionsPerSecond, digits: 0, target: '≥ 1.0' },
  { figure: 'deliveries/s', pick: (f: RealtimeFigures) => f.deliveriesPerSecond, digits: 0, target: '≥ 1.3' },
  { figure: 'p50 latency ms', pick: (f: RealtimeFigures) => f.p50ms, digits: 2, target: '' },
  { figure: 'p99 latency ms', pick: (f: RealtimeFigures) => f.p99ms, digits: 2, target: '≤ 0.8' },
];

function loadCpuOf(figure: string, f: RealtimeFigures): number {
  if (figure === 'sessions/s') return f.loadCpu.sessions;
  return figure === 'deliveries/s' ? f.loadCpu.fanOut : f.loadCpu.latency;
}

function errorsOf(figure: string, f: RealtimeFigures): number {
  if (figure === 'sessions/s') return f.sessionErrors;
  return figure === 'deliveries/s' ? f.connectErrors : f.lost;
}

export function formatRealtime(summary: RealtimeSummary): string {
  const { figures, failures } = summary;
  const lines = [
    '| figure | config | median | vs cluster | load process CPU % | errors |',
    '|---|---|---:|---:|---:|---:|',
  ];
  for (const { figure, pick, digits } of rows) {
    for (const config of realtimeConfigs) {
      const f = figures[config];
      if (!f) {
        lines.push(`| ${figure} | ${config} | failed | | | |`);
        continue;
      }
      const cluster = figures.cluster ? (pick(f) / pick(figures.cluster)).toFixed(2) : '';
      lines.push(
        `| ${figure} | ${config} | ${pick(f).toFixed(digits)} | ${cluster} | ${loadCpuOf(figure, f).toFixed(0)} | ${errorsOf(figure, f)} |`,
      );
    }
  }
  const targets = ['| figure | socketnaut vs cluster | target |', '|---|---:|---:|'];
  for (const { figure, pick, target } of rows) {
    if (!target) continue;
    const ratio =
      figures.socketnaut && figures.cluster ? `${(pick(figures.socketnaut) / pick(figures.cluster)).toFixed(2)}×` : '';
    targets.push(`| ${figure} | ${ratio} | ${target}× |`);
  }
  const spread = realtimeConfigs
    .filter((config) => figures[config])
    .map((config) => `${config} ${figures[config]!.byWorker.join('/')}, ${figures[config]!.rssMB.toFixed(0)} MB`)
    .join('; ');
  return [
    lines.join('\n'),
    '',
    targets.join('\n'),
    '',
    `- clients by worker in the last round, and server RSS with them: ${spread}`,
    ...Object.entries(failures).map(([config, why]) => `- ${config} failed: ${why.split('\n')[0]}`),
  ].join('\n');
}

export function describeRealtime(options: RealtimeOptions, summary: RealtimeSummary): string {
  const loads = `${options.loadProcesses} load process${options.loadProcesses === 1 ? '' : 'es'}`;
  return [
    `Realtime: one Socket.IO app (socket.io ${socketIoVersion()}) alone in one process (one-process), on node:cluster`,
    'with @socket.io/sticky and @socket.io/cluster-adapter as Socket.IO documents it (cluster), and under',
    `socketnaut's launcher, importing nothing of it (socketnaut, transport ${summary.transport ?? '?'}); N = ${options.workers} workers; medians of`,
    `${options.rounds} interleaved rounds of ${options.durationS} s per measurement. Clients: \`ws\` speaking Engine.IO v4 frames, in ${loads}`,
    'sharing the machine; load process CPU % is the busiest one, in % of one core (near 100, the load is the limit).',
    options.oneAddress
      ? 'Every client connects from 127.0.0.1, as clients behind one NAT or proxy.'
      : 'Each session has a client address of its own (127.20.0.1, 127.20.0.2, ...), as clients on the internet do.',
    options.websocketOnly
      ? `- sessions/s: ${options.sessionConcurrency} loops that each set up a session (WebSocket from the start, no long-polling,`
      : `- sessions/s: ${options.sessionConcurrency} loops that each set up a session (long-polling handshake, upgrade to WebSocket,`,
    "  Socket.IO's CONNECT) and close it; errors: set-ups that failed.",
    `- deliveries/s: ${options.clients} clients; one emits, the server sends it to all (io.emit), ${WINDOW} broadcasts in flight;`,
    '  errors: set-ups of these clients that failed, and were made again.',
    `- latency: the same clients, ${options.broadcastRate} broadcasts a second, from the emit to each arrival; errors: deliveries lost.`,
  ].join('\n');
}

function socketIoVersion(): string {
  return (createRequire(import.meta.url)('socket.io/package.json') as { version: string }).version;
}
