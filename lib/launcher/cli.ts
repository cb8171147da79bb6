#!/usr/bin/env node
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { balancerNames, type BalancerName } from '../balancers/balancer.ts';
import { Level } from '../logging.ts';
import { MAX_TIMER_MS } from '../options.ts';
import { transportNames, type TransportName } from '../transports/transport.ts';
import { launch, type LaunchOptions, type Launched } from './launch.ts';

const usage = `Usage: socketnaut [options] <app-module>

Runs <app-module> on every worker thread behind one public port. The app listens as usual
(app.listen(3000), fastify.listen(), server.listen(PORT)); the launcher owns the port.

Options (environment variable in brackets):
  -p, --port <n>              public port [PORT] (default 3000)
      --host <addr>           address to bind [HOST] (default: all interfaces)
  -w, --workers <n>           worker threads [SOCKETNAUT_WORKERS] (default: available parallelism)
      --min-workers <n>       grow and shrink the pool between these bounds
      --max-workers <n>         [SOCKETNAUT_MIN_WORKERS, SOCKETNAUT_MAX_WORKERS]
      --transport <name>      auto | handoff | pipe [SOCKETNAUT_TRANSPORT] (default auto)
      --balance <name>        least-connections | round-robin | ip-hash | least-loaded
                              [SOCKETNAUT_BALANCE]
      --tls-key <file>        PEM key; with --tls-cert, TLS ends at the proxy [SOCKETNAUT_TLS_KEY]
      --tls-cert <file>       PEM certificate [SOCKETNAUT_TLS_CERT]
      --log-level <level>     debug | info | notice | warn | error [SOCKETNAUT_LOG_LEVEL] (default warn)
      --shutdown-timeout <ms> grace for open connections on SIGINT/SIGTERM and SIGHUP [SOCKETNAUT_SHUTDOWN_TIMEOUT]
                              (default 10000)
      --max-connections <n>   open connections allowed at once (default: no limit)
      --max-connections-per-ip <n>  open connections allowed from one client address
      --queue-limit <n>       connections that may wait for a worker (default 1024)
      --queue-timeout <ms>    how long they may wait before a 503 (default 10000)
      --headers-timeout <ms>  deadline for a request's headers in the app (default 10000)
      --request-timeout <ms>  deadline for a whole request in the app (default 60000)
      --proxy-protocol        connections open with a PROXY v1/v2 header from a balancer [SOCKETNAUT_PROXY_PROTOCOL=1]
      --proxy-protocol-from <list>  accept headers only from these addresses or CIDR subnets,
                              comma-separated [SOCKETNAUT_PROXY_PROTOCOL_FROM]
      --proxy-protocol-timeout <ms>  deadline for the whole header (default 3000)
      --metrics <[host:]port> serve Prometheus metrics at /metrics on this address [SOCKETNAUT_METRICS]
      --status-interval <s>   print a line about the workers every s seconds (JSON lines
                              when not on a terminal) [SOCKETNAUT_STATUS_INTERVAL]
  -h, --help                  show this text
  -v, --version               show the version

Signals: SIGINT and SIGTERM stop accepting and let in-flight requests finish, then exit 0.
SIGHUP replaces the workers one at a time, with no failed request.`;

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

class UsageError extends Error {}

const flags = {
  port: { type: 'string', short: 'p' },
  host: { type: 'string' },
  workers: { type: 'string', short: 'w' },
  'min-workers': { type: 'string' },
  'max-workers': { type: 'string' },
  transport: { type: 'string' },
  balance: { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-cert': { type: 'string' },
  'log-level': { type: 'string' },
  'shutdown-timeout': { type: 'string' },
  'max-connections': { type: 'string' },
  'max-connections-per-ip': { type: 'string' },
  'queue-limit': { type: 'string' },
  'queue-timeout': { type: 'string' },
  'headers-timeout': { type: 'string' },
  'request-timeout': { type: 'string' },
  metrics: { type: 'string' },
  'proxy-protocol': { type: 'boolean' },
  'proxy-protocol-from': { type: 'string' },
  'proxy-protocol-timeout': { type: 'string' },
  'status-interval': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

type Values = { [K in keyof typeof flags]?: (typeof flags)[K]['type'] extends 'boolean' ? boolean : string };

function setting(values: Values, flag: keyof typeof flags, env: string): string | undefined {
  return (values[flag] as string | undefined) ?? process.env[env];
}

function integer(name: string, value: string | undefined, min: number, max?: number): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (value.trim() === '' || !Number.isInteger(number) || number < min || (max !== undefined && number > max)) {
    const range = max === undefined ? `>= ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`--${name} must be an integer ${range}, not '${value}'`);
  }
  return number;
}

function choice<T extends string>(name: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!allowed.includes(value as T)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, not '${value}'`);
  return value as T;
}

function list(value: string | undefined): string[] | undefined {
  return value?.split(',').map((item) => item.trim()).filter(Boolean);
}

function positiveNumber(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number <= 0) throw new UsageError(`--${name} must be a number > 0, not '${value}'`);
  return number;
}

// "9100", "127.0.0.1:9100" or "[::1]:9100".
function hostPort(name: string, value: string | undefined): { host?: string; port: number } | undefined {
  if (value === undefined) return undefined;
  const match = /^(?:\[([^\]]+)\]:|([^:]+):)?(\d+)$/.exec(value);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new UsageError(`--${name} must be [host:]port, not '${value}'`);
  const host = match[1] ?? match[2];
  return host === undefined ? { port } : { host, port };
}

function logLevel(value: string | undefined): Level {
  if (value === undefined) return Level.WARN;
  const level = Level[value.toUpperCase() as keyof typeof Level];
  if (typeof level !== 'number') throw new UsageError(`--log-level must be one of debug, info, notice, warn, error, not '${value}'`);
  return level;
}

function readPem(name: string, file: string | undefined): Buffer | undefined {
  if (file === undefined) return undefined;
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new UsageError(`--${name}: cannot read ${file}: ${(err as Error).message}`);
  }
}

export function parseCommandLine(argv: string[]): LaunchOptions | 'help' | 'version' {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: flags, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const values = parsed.values as Values;
  if (values.help) return 'help';
  if (values.version) return 'version';
  if (parsed.positionals.length !== 1) throw new UsageError('Expected exactly one <app-module>');

  const tlsKey = readPem('tls-key', setting(values, 'tls-key', 'SOCKETNAUT_TLS_KEY'));
  const tlsCert = readPem('tls-cert', setting(values, 'tls-cert', 'SOCKETNAUT_TLS_CERT'));
  if ((tlsKey === undefined) !== (tlsCert === undefined)) throw new UsageError('--tls-key and --tls-cert go together');
  return {
    app: parsed.positionals[0]!,
    port: integer('port', setting(values, 'port', 'PORT'), 0, 65535),
    host: setting(values, 'host', 'HOST'),
    workers: integer('workers', setting(values, 'workers', 'SOCKETNAUT_WORKERS'), 1),
    minWorkers: integer('min-workers', setting(values, 'min-workers', 'SOCKETNAUT_MIN_WORKERS'), 0),
    maxWorkers: integer('max-workers', setting(values, 'max-workers', 'SOCKETNAUT_MAX_WORKERS'), 1),
    transport: choice<TransportName>('transport', setting(values, 'transport', 'SOCKETNAUT_TRANSPORT'), transportNames),
    balance: choice<BalancerName>('balance', setting(values, 'balance', 'SOCKETNAUT_BALANCE'), balancerNames),
    tlsKey,
    tlsCert,
    logLevel: logLevel(setting(values, 'log-level', 'SOCKETNAUT_LOG_LEVEL')),
    shutdownTimeout: integer('shutdown-timeout', setting(values, 'shutdown-timeout', 'SOCKETNAUT_SHUTDOWN_TIMEOUT'), 0, MAX_TIMER_MS),
    maxConnections: integer('max-connections', setting(values, 'max-connections', 'SOCKETNAUT_MAX_CONNECTIONS'), 0),
    maxConnectionsPerIp: integer('max-connections-per-ip', setting(values, 'max-connections-per-ip', 'SOCKETNAUT_MAX_CONNECTIONS_PER_IP'), 0),
    queueLimit: integer('queue-limit', setting(values, 'queue-limit', 'SOCKETNAUT_QUEUE_LIMIT'), 0),
    queueTimeout: integer('queue-timeout', setting(values, 'queue-timeout', 'SOCKETNAUT_QUEUE_TIMEOUT'), 1, MAX_TIMER_MS),
    headersTimeout: integer('headers-timeout', setting(values, 'headers-timeout', 'SOCKETNAUT_HEADERS_TIMEOUT'), 1, MAX_TIMER_MS),
    requestTimeout: integer('request-timeout', setting(values, 'request-timeout', 'SOCKETNAUT_REQUEST_TIMEOUT'), 0, MAX_TIMER_MS),
    metrics: hostPort('metrics', setting(values, 'metrics', 'SOCKETNAUT_METRICS')),
    proxyProtocol: values['proxy-protocol'] ?? (process.env.SOCKETNAUT_PROXY_PROTOCOL === '1' || undefined),
    proxyProtocolFrom: list(setting(values, 'proxy-protocol-from', 'SOCKETNAUT_PROXY_PROTOCOL_FROM')),
    proxyProtocolTimeout: integer('proxy-protocol-timeout', setting(values, 'proxy-protocol-timeout', 'SOCKETNAUT_PROXY_PROTOCOL_TIMEOUT'), 1, MAX_TIMER_MS),
    statusInterval: positiveNumber('status-interval', setting(values, 'status-interval', 'SOCKETNAUT_STATUS_INTERVAL')),
  };
}

function version(): string {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

// Installed before start-up, so that a signal that comes early still ends the process cleanly.
function handleSignals(): (launched: Launched) => void {
  let launched: Launched | undefined;
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      console.error(`socketnaut: ${signal} again; exiting without waiting`);
      process.exit(EXIT_FAILURE);
    }
    stopping = true;
    if (!launched) process.exit(0);
    console.error(`socketnaut: ${signal}; finishing in-flight requests`);
    launched.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`socketnaut: shutdown failed: ${(err as Error).message}`);
        process.exit(EXIT_FAILURE);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', () => {
    if (!launched || stopping) return;
    console.error('socketnaut: SIGHUP; reloading workers');
    launched.reload().then(
      () => console.error('socketnaut: reload complete'),
      (err: unknown) => console.error(`socketnaut: reload stopped, old workers keep serving: ${(err as Error).message}`),
    );
  });
  return (started) => {
    launched = started;
  };
}

export async function main(argv: string[]): Promise<void> {
  let options;
  try {
    options = parseCommandLine(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`socketnaut: ${err.message}\n\n${usage}`);
    process.exit(EXIT_USAGE);
  }
  if (options === 'help') return console.log(usage);
  if (options === 'version') return console.log(version());

  const started = handleSignals();
  let launched: Launched;
  try {
    launched = await launch(options);
  } catch (err) {
    const cause = (err as Error).cause as Error | undefined;
    console.error(`socketnaut: ${(err as Error).message}${cause?.stack ? `\n${cause.stack}` : ''}`);
    process.exit(EXIT_FAILURE);
  }
  started(launched);
  const workers = launched.proxy.agents.length;
  const metrics = launched.metrics ? ` · metrics ${launched.metrics.url}` : '';
  console.log(`socketnaut: ${launched.url} · ${workers} worker${workers === 1 ? '' : 's'} · transport ${launched.proxy.transport}${metrics}`);
}

await main(process.argv.slice(2));
