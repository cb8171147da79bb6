// npm run bench [-- --rounds 5 --duration 5 --workers 2 --only hello,close,balance,realtime] [--websocket-only] [--one-address]
// Compares one plain node:http process, node:cluster, threads that each listen with SO_REUSEPORT (the
// design of Platformatic Watt and `deno serve --parallel`) and socketnaut's three transports under the
// same handler, interleaved round by round, with wrk as the load generator. Then the realtime part
// (realtime.ts): one Socket.IO app alone, on node:cluster as Socket.IO documents it, and under socketnaut.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { renderChart } from './chart.ts';
import { freePort, median, treeRssMB } from './helpers.ts';
import { describeRealtime, formatRealtime, measureRealtime, type RealtimeOptions } from './realtime.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    duration: { type: 'string', default: '5' },
    workers: { type: 'string', default: String(os.availableParallelism()) },
    only: { type: 'string' },
    clients: { type: 'string', default: '400' },
    'broadcast-rate': { type: 'string', default: '25' },
    'session-concurrency': { type: 'string', default: '50' },
    'websocket-only': { type: 'boolean', default: false },
    'one-address': { type: 'boolean', default: false },
    'load-processes': { type: 'string', default: String(os.availableParallelism() >= 4 ? 2 : 1) },
    out: { type: 'string', default: new URL('./results/', import.meta.url).pathname },
  },
});
const ROUNDS = Number(values.rounds);
const DURATION_S = Number(values.duration);
const WORKERS = Number(values.workers);
const OUT_DIR = values.out;
const ONLY = values.only?.split(',');

export const configs = ['plain', 'cluster', 'threads-reuseport', 'handoff', 'pipe', 'reuseport'] as const;
const socketnautConfigs = new Set<string>(['handoff', 'pipe', 'reuseport']);
type Config = (typeof configs)[number];

interface Workload {
  name: string;
  protocol: 'http' | 'https';
  path: string;
  connections: number;
  lua: string;
}

const closeHeader = `wrk.headers["Connection"] = "close"\n`;
const allWorkloads: Workload[] = [
  { name: 'hello', protocol: 'http', path: '/', connections: 50, lua: '' },
  { name: 'spin', protocol: 'http', path: '/spin', connections: 50, lua: '' },
  { name: 'close', protocol: 'http', path: '/', connections: 50, lua: closeHeader },
  {
    name: 'bulk',
    protocol: 'http',
    path: '/echo',
    connections: 50,
    lua: `wrk.method = "POST"\nwrk.body = string.rep("x", 65536)\nwrk.headers["Content-Type"] = "application/octet-stream"\n`,
  },
  { name: 'tls', protocol: 'https', path: '/', connections: 50, lua: closeHeader },
];
export const workloads = allWorkloads.filter((w) => !ONLY || ONLY.includes(w.name));

const reportLua = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"errors":%d,"non2xx":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
`;

interface Run {
  rps: number;
  p99ms: number;
  errors: number;
  rssMB: number;
  /** CPU time of socketnaut's main thread per request, in µs: per connection under Connection: close. */
  mainCpuUs: number | undefined;
}

interface Server {
  child: ChildProcess;
  port: number;
  readyMs: number | undefined;
  /** Its main thread's CPU time so far in µs, for socketnaut's configs. */
  mainCpu: (() => Promise<number>) | undefined;
}

const serverScript = new URL('./server.js', import.meta.url).pathname;

async function startServer(config: string, protocol: string, workers: number): Promise<Server> {
  const port = await freePort();
  const child = spawn(process.execPath, [serverScript, config, protocol, String(port), String(workers)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  const cpuWaiters: ((us: number) => void)[] = [];
  const ready = new Promise<number | undefined>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      const match = /READY ?([\d.]*)/.exec(output);
      if (match) resolve(match[1] ? Number(match[1]) : undefined);
      for (const [, us] of chunk.matchAll(/^CPU (\d+)$/gm)) cpuWaiters.shift()?.(Number(us));
    });
    child.once('exit', (code) => reject(new Error(`${config} server exited with ${code}`)));
  });
  const readyMs = await ready;
  const mainCpu = socketnautConfigs.has(config.split('/')[0]!)
    ? () =>
        new Promise<number>((resolve) => {
          cpuWaiters.push(resolve);
          child.kill('SIGUSR2');
        })
    : undefined;
  return { child, port, readyMs, mainCpu };
}

async function stopServer(server: Server): Promise<void> {
  if (server.child.exitCode !== null) return;
  server.child.kill('SIGKILL');
  await once(server.child, 'exit');
}

const scriptDir = fs.mkdtempSync(`${os.tmpdir()}/socketnaut-bench-`);
process.on('exit', () => fs.rmSync(scriptDir, { recursive: true, force: true }));

async function wrk(workload: Workload, server: Server, seconds: number): Promise<Run> {
  const script = `${scriptDir}/${workload.name}.lua`;
  fs.writeFileSync(script, workload.lua + reportLua);
  const url = `${workload.protocol}://127.0.0.1:${server.port}${workload.path}`;
  const child = spawn(
    'wrk',
    ['-t1', `-c${workload.connections}`, `-d${seconds}s`, '--timeout', '10s', '-s', script, url],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  let rssMB = 0;
  const cpuBefore = await server.mainCpu?.();
  const sampler = setInterval(() => (rssMB = Math.max(rssMB, treeRssMB(server.child.pid!))), 250);
  await once(child, 'exit');
  clearInterval(sampler);
  const cpuAfter = await server.mainCpu?.();
  const match = /RESULT (\{.*\})/.exec(output);
  if (!match) throw new Error(`wrk printed no result:\n${output}`);
  const result = JSON.parse(match[1]!) as {
    requests: number;
    duration_us: number;
    p99_us: number;
    errors: number;
    non2xx: number;
  };
  return {
    rps: result.requests / (result.duration_us / 1e6),
    p99ms: result.p99_us / 1000,
    errors: result.errors + result.non2xx,
    rssMB,
    mainCpuUs: cpuBefore === undefined || cpuAfter === undefined ? undefined : (cpuAfter - cpuBefore) / result.requests,
  };
}

function tool(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    return String((err as { stdout?: string }).stdout ?? '') + String((err as { stderr?: string }).stderr ?? '');
  }
}

function checkWrk(): string {
  const version = tool('wrk', ['-v']).split('\n')[0]!.trim();
  if (!/^wrk/.test(version)) {
    console.error('npm run bench needs wrk, the HTTP load generator: apt-get install wrk (or brew install wrk)');
    process.exit(1);
  }
  return version;
}

type Summary = Record<
  string,
  Record<Config, { rps: number; p99ms: number; rssMB: number; errors: number; mainCpuUs: number | undefined }>
>;

async function measureWorkloads(): Promise<Summary> {
  const summary: Summary = {};
  for (const workload of workloads) {
    const servers = new Map<Config, Server>();
    for (const config of configs) servers.set(config, await startServer(config, workload.protocol, WORKERS));
    try {
      for (const config of configs) await wrk(workload, servers.get(config)!, 1);
      const runs = new Map<Config, Run[]>(configs.map((c) => [c, []]));
      for (let round = 1; round <= ROUNDS; round++) {
        for (const config of configs) {
          const run = await wrk(workload, servers.get(config)!, DURATION_S);
          runs.get(config)!.push(run);
          console.error(
            `${workload.name} round ${round} ${config}: ${run.rps.toFixed(0)} req/s, p99 ${run.p99ms.toFixed(1)} ms`,
          );
        }
      }
      summary[workload.name] = Object.fromEntries(
        configs.map((config) => {
          const list = runs.get(config)!;
          return [
            config,
            {
              rps: median(list.map((r) => r.rps)),
              p99ms: median(list.map((r) => r.p99ms)),
              rssMB: median(list.map((r) => r.rssMB)),
              errors: list.reduce((sum, r) => sum + r.errors, 0),
              mainCpuUs: list[0]!.mainCpuUs === undefined ? undefined : median(list.map((r) => r.mainCpuUs!)),
            },
          ];
        }),
      ) as Summary[string];
    } finally {
      for (const server of servers.values()) await stopServer(server);
    }
  }
  return summary;
}

interface Extras {
  readyMs: number;
  rssPerExtraWorkerMB: number;
  rssPerExtraWorkerEsmHttpMB: number;
  dispatchPerSecond: number;
}

async function measureRssPerExtraWorker(protocol: 'http' | 'http-esm'): Promise<number> {
  const one = await startServer('handoff', protocol, 1);
  const four = await startServer('handoff', protocol, 4);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const perExtraWorker = (treeRssMB(four.child.pid!) - treeRssMB(one.child.pid!)) / 3;
  await stopServer(one);
  await stopServer(four);
  return perExtraWorker;
}

async function measureExtras(): Promise<Extras> {
  const readyTimes: number[] = [];
  for (let i = 0; i < 5; i++) {
    const server = await startServer('handoff', 'http', WORKERS);
    readyTimes.push(server.readyMs ?? NaN);
    await stopServer(server);
  }

  const rssPerExtraWorkerMB = await measureRssPerExtraWorker('http');
  const rssPerExtraWorkerEsmHttpMB = await measureRssPerExtraWorker('http-esm');

  const raw = await startServer('handoff', 'raw', WORKERS);
  const close = workloads.find((w) => w.name === 'close') ?? {
    name: 'close',
    protocol: 'http' as const,
    path: '/',
    connections: 50,
    lua: closeHeader,
  };
  const dispatch = await wrk(close, raw, DURATION_S);
  await stopServer(raw);
  return {
    readyMs: median(readyTimes),
    rssPerExtraWorkerMB,
    rssPerExtraWorkerEsmHttpMB,
    dispatchPerSecond: dispatch.rps,
  };
}

const balancerConfigs = ['least-loaded', 'least-connections', 'round-robin'] as const;
type BalancerSummary = Record<(typeof balancerConfigs)[number], { rps: number; p99ms: number; errors: number }>;

// Connection: close load where 5% of requests burn 20 ms of CPU and the rest 0.1 ms, hand-off, N workers.
async function measureBalancers(): Promise<BalancerSummary> {
  const workload: Workload = { name: 'balance', protocol: 'http', path: '/mixed', connections: 50, lua: closeHeader };
  const servers = new Map<string, Server>();
  for (const balance of balancerConfigs) servers.set(balance, await startServer(`handoff/${balance}`, 'http', WORKERS));
  const runs = new Map<string, Run[]>(balancerConfigs.map((b) => [b, []]));
  try {
    for (const balance of balancerConfigs) await wrk(workload, servers.get(balance)!, 1);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const balance of balancerConfigs) {
        const run = await wrk(workload, servers.get(balance)!, DURATION_S);
        runs.get(balance)!.push(run);
        console.error(`balance round ${round} ${balance}: ${run.rps.toFixed(0)} req/s, p99 ${run.p99ms.toFixed(1)} ms`);
      }
    }
  } finally {
    for (const server of servers.values()) await stopServer(server);
  }
  return Object.fromEntries(
    balancerConfigs.map((balance) => {
      const list = runs.get(balance)!;
      return [
        balance,
        {
          rps: median(list.map((r) => r.rps)),
          p99ms: median(list.map((r) => r.p99ms)),
          errors: list.reduce((sum, r) => sum + r.errors, 0),
        },
      ];
    }),
  ) as BalancerSummary;
}

function formatBalancers(balancing: BalancerSummary): string {
  const lines = ['| balance | req/s | p99 ms | errors |', '|---|---:|---:|---:|'];
  for (const balance of balancerConfigs) {
    const row = balancing[balance];
    lines.push(`| ${balance} | ${row.rps.toFixed(0)} | ${row.p99ms.toFixed(1)} | ${row.errors} |`);
  }
  return lines.join('\n');
}

function formatTable(summary: Summary): string {
  const lines = [
    '| workload | config | req/s | p99 ms | RSS MB | vs plain | vs cluster | vs threads-reuseport | p99 vs threads-reuseport | main thread µs/req | errors |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const [name, byConfig] of Object.entries(summary)) {
    for (const config of configs) {
      const row = byConfig[config];
      const threads = byConfig['threads-reuseport'];
      const ratios = [
        row.rps / byConfig.plain.rps,
        row.rps / byConfig.cluster.rps,
        row.rps / threads.rps,
        row.p99ms / threads.p99ms,
      ].map((r) => r.toFixed(2));
      const cpu = row.mainCpuUs === undefined ? '' : row.mainCpuUs.toFixed(2);
      lines.push(
        `| ${name} | ${config} | ${row.rps.toFixed(0)} | ${row.p99ms.toFixed(1)} | ${row.rssMB.toFixed(0)} | ${ratios.join(' | ')} | ${cpu} | ${row.errors} |`,
      );
    }
  }
  return lines.join('\n');
}

const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}`;

async function benchHttp(): Promise<void> {
  const wrkVersion = checkWrk();
  const started = new Date();
  console.error(
    `Benchmarking with ${wrkVersion}; N = ${WORKERS}; ${ROUNDS} rounds of ${DURATION_S} s; ${machine}; Node ${process.version}`,
  );

  const summary = await measureWorkloads();
  const extras = await measureExtras();
  const balancing = ONLY && !ONLY.includes('balance') ? undefined : await measureBalancers();

  const table = formatTable(summary);
  const report = [
    `Measured ${started.toISOString().slice(0, 10)} on ${machine}, Node ${process.version}.`,
    `Load generator: ${wrkVersion} (1 thread, 50 connections), sharing the machine with the server.`,
    `N = ${WORKERS} workers; medians of ${ROUNDS} interleaved rounds of ${DURATION_S} s. threads-reuseport is the design of`,
    'Platformatic Watt and `deno serve --parallel`: worker threads that each listen on the port with SO_REUSEPORT, no',
    "features. Main thread µs/req: CPU time of socketnaut's main thread, read from its own thread's clock, per request",
    '(per connection under close and tls, whose every request opens one).',
    '',
    table,
    '',
    `- start to 'ready' with ${WORKERS} workers (handoff): ${extras.readyMs.toFixed(0)} ms`,
    `- RSS per extra idle worker: ${extras.rssPerExtraWorkerMB.toFixed(1)} MB; ${extras.rssPerExtraWorkerEsmHttpMB.toFixed(1)} MB when the app loads node:http with an ESM import`,
    `- main-thread hand-off rate (workers answer without parsing, a new connection per request): ${extras.dispatchPerSecond.toFixed(0)} connections/s`,
    ...(balancing
      ? [
          '',
          `Balancers, hand-off, Connection: close, 5% of requests 20 ms of CPU and the rest 0.1 ms:`,
          '',
          formatBalancers(balancing),
        ]
      : []),
  ].join('\n');
  console.log(report);

  fs.mkdirSync(OUT_DIR, { recursive: true });
  fs.writeFileSync(
    `${OUT_DIR}/latest.json`,
    `${JSON.stringify(
      {
        date: started.toISOString(),
        machine,
        node: process.version,
        loadGenerator: wrkVersion,
        workers: WORKERS,
        rounds: ROUNDS,
        durationSeconds: DURATION_S,
        summary,
        extras,
        balancing,
      },
      null,
      2,
    )}\n`,
  );
  fs.writeFileSync(`${OUT_DIR}/latest.md`, `${report}\n`);
  fs.writeFileSync(
    `${OUT_DIR}/chart.svg`,
    renderChart(summary, configs, `req/s, N = ${WORKERS}, ${started.toISOString().slice(0, 10)}`),
  );
  console.error(`Wrote ${OUT_DIR}latest.json, latest.md and chart.svg`);
}

async function benchRealtime(): Promise<void> {
  const options: RealtimeOptions = {
    rounds: ROUNDS,
    durationS: DURATION_S,
    workers: WORKERS,
    clients: Number(values.clients),
    broadcastRate: Number(values['broadcast-rate']),
    sessionConcurrency: Number(values['session-concurrency']),
    loadProcesses: Number(values['load-processes']),
    websocketOnly: values['websocket-only'],
    oneAddress: values['one-address'],
  };
  // The load processes, which read it, inherit the environment.
  if (options.websocketOnly) process.env.BENCH_WEBSOCKET_ONLY = '1';
  if (options.oneAddress) process.env.BENCH_ONE_ADDRESS = '1';
  const started = new Date();
  console.error(
    `Realtime: N = ${WORKERS}; ${ROUNDS} rounds of 3 × ${DURATION_S} s; ${machine}; Node ${process.version}`,
  );
  const summary = await measureRealtime(options);
  const report = [
    `Measured ${started.toISOString().slice(0, 10)} on ${machine}, Node ${process.version}.`,
    describeRealtime(options, summary),
    '',
    formatRealtime(summary),
  ].join('\n');
  console.log(report);
  fs.mkdirSync(OUT_DIR, { recursive: true });
  fs.writeFileSync(
    `${OUT_DIR}/realtime.json`,
    `${JSON.stringify({ date: started.toISOString(), machine, node: process.version, ...options, ...summary }, null, 2)}\n`,
  );
  fs.writeFileSync(`${OUT_DIR}/realtime.md`, `${report}\n`);
  console.error(`Wrote ${OUT_DIR}realtime.json and realtime.md`);
}

// Only the realtime part (--only realtime) needs no wrk.
if (!ONLY || ONLY.some((name) => name !== 'realtime')) await benchHttp();
if (!ONLY || ONLY.includes('realtime')) await benchRealtime();
