// The one table of settings: the options of createServiceProxy() and launch(), and the launcher's
// flags and environment variables. Their checks, defaults, --help and the README's tables come from it.
import net from 'node:net';
import { SyslogLevel } from 'streams-logger';
import { balancerNames } from './balancers/balancer.ts';
import {
  boolean,
  checkValue,
  fields,
  host,
  hostAndPort,
  instanceOf,
  integer,
  logLevel,
  nonEmptyString,
  oneOf,
  optional,
  pathList,
  pem,
  seconds,
  stringOrBuffer,
  subnets,
  timer,
  timerOrOff,
  workerOptions,
  workerURL,
} from './settings/checks.ts';
import { required, type Setting, type Side, setting } from './settings/setting.ts';
import { transportNames } from './transports/delivery.ts';

export type { Setting, Side } from './settings/setting.ts';

const headersTimeout = timer(1);
const requestTimeout = timer(0);
/** A stall is a loop quiet for 1 s: a worker cannot be replaced for one before that. */
const MIN_STALL_TIMEOUT_MS = 1_000;
/** 1 TiB of heap: anything above is a mistake in the unit. */
const MAX_MEMORY_MB = 1_048_576;

// Each entry: where it applies and how the launcher names it; its check and default; its help.
export const settings = {
  app: required({
    appliesTo: 'launcher',
    check: nonEmptyString("the path of the app's module"),
    help: "path of the app's main module, which every worker runs",
  }),
  server: required({
    appliesTo: 'proxy',
    check: instanceOf(net.Server, 'a net.Server or tls.Server'),
    help: 'a `net.Server` or `tls.Server`, configured and listened on by you',
  }),
  workerURL: required({
    appliesTo: 'proxy',
    check: workerURL,
    help: 'path (relative to the working directory) or URL of the worker module',
  }),
  port: setting({
    appliesTo: 'launcher',
    flag: 'port',
    short: 'p',
    env: 'PORT',
    placeholder: '<n>',
    check: integer(0, 65535),
    default: 3000,
    help: 'public port',
  }),
  host: setting({
    appliesTo: 'launcher',
    flag: 'host',
    env: 'HOST',
    placeholder: '<addr>',
    check: host,
    defaultText: 'all interfaces',
    help: 'address to bind',
  }),
  workers: setting({
    appliesTo: 'launcher',
    flag: 'workers',
    short: 'w',
    env: 'SOCKETNAUT_WORKERS',
    placeholder: '<n>',
    check: integer(1),
    defaultText: 'available parallelism',
    help: 'fixed number of workers, unless a bound below is given',
  }),
  workerCount: setting({
    appliesTo: 'proxy',
    check: integer(1),
    help: 'sets both `minWorkers` and `maxWorkers`',
  }),
  minWorkers: setting({
    appliesTo: 'both',
    flag: 'min-workers',
    env: 'SOCKETNAUT_MIN_WORKERS',
    placeholder: '<n>',
    check: integer(0),
    default: 0,
    help: 'workers kept running; started at once',
  }),
  maxWorkers: setting({
    appliesTo: 'both',
    flag: 'max-workers',
    env: 'SOCKETNAUT_MAX_WORKERS',
    placeholder: '<n>',
    check: integer(1),
    defaultText: 'available parallelism',
    help: 'the pool grows on demand up to this, and retires workers left idle',
  }),
  workersCheckingInterval: setting({
    appliesTo: 'proxy',
    check: timer(1),
    default: 60_000,
    help: 'ms between checks that retire workers idle for that long, down to `minWorkers`',
  }),
  workerOptions: setting({
    appliesTo: 'proxy',
    check: workerOptions,
    help: 'passed to `new Worker` (`resourceLimits`, `env`, `workerData`, ...)',
  }),
  workerStartTimeout: setting({
    appliesTo: 'proxy',
    check: timer(1),
    default: 30_000,
    help: 'ms a new worker may take to start serving',
  }),
  maxStartAttempts: setting({
    appliesTo: 'launcher',
    check: integer(1),
    default: 3,
    help: 'failed starts of the app in a row, with no worker serving, before `launch()` gives up',
  }),
  transport: setting({
    appliesTo: 'both',
    flag: 'transport',
    env: 'SOCKETNAUT_TRANSPORT',
    placeholder: '<name>',
    check: oneOf(transportNames),
    default: 'auto',
    help: 'how connections reach the workers',
  }),
  balance: setting({
    appliesTo: 'both',
    flag: 'balance',
    env: 'SOCKETNAUT_BALANCE',
    placeholder: '<name>',
    check: oneOf(balancerNames),
    default: 'least-connections',
    help: 'how the worker for a connection is picked',
  }),
  tlsKey: setting({
    appliesTo: 'launcher',
    flag: 'tls-key',
    env: 'SOCKETNAUT_TLS_KEY',
    placeholder: '<file>',
    check: pem,
    help: 'PEM key; with the certificate, TLS ends at the proxy',
  }),
  tlsCert: setting({
    appliesTo: 'launcher',
    flag: 'tls-cert',
    env: 'SOCKETNAUT_TLS_CERT',
    placeholder: '<file>',
    check: pem,
    help: 'PEM certificate',
  }),
  logLevel: setting({
    appliesTo: 'launcher',
    flag: 'log-level',
    env: 'SOCKETNAUT_LOG_LEVEL',
    placeholder: '<level>',
    check: logLevel,
    default: SyslogLevel.WARN,
    help: 'what socketnaut logs',
  }),
  shutdownTimeout: setting({
    appliesTo: 'both',
    flag: 'shutdown-timeout',
    env: 'SOCKETNAUT_SHUTDOWN_TIMEOUT',
    placeholder: '<ms>',
    check: timer(0),
    default: 10_000,
    help: "grace for open connections when stopping, and for an old worker's at a reload or a recycle",
  }),
  stallTimeout: setting({
    appliesTo: 'both',
    flag: 'stall-timeout',
    env: 'SOCKETNAUT_STALL_TIMEOUT',
    placeholder: '<ms>',
    check: timerOrOff(MIN_STALL_TIMEOUT_MS),
    default: 30_000,
    help: "ms a worker's event loop may stay stuck before the worker is replaced; stuck for 1 s, it gets no new connection meanwhile; 0 turns this off",
  }),
  maxMemoryRestart: setting({
    appliesTo: 'both',
    flag: 'max-memory-restart',
    env: 'SOCKETNAUT_MAX_MEMORY_RESTART',
    placeholder: '<MB>',
    check: integer(1, MAX_MEMORY_MB),
    defaultText: 'off',
    help: 'MB of V8 heap in use above which a worker is recycled: its successor serves first, then it drains',
  }),
  maxConnections: setting({
    appliesTo: 'both',
    flag: 'max-connections',
    env: 'SOCKETNAUT_MAX_CONNECTIONS',
    placeholder: '<n>',
    check: integer(0),
    default: 0,
    defaultText: 'no limit',
    help: 'open connections allowed at once',
  }),
  maxConnectionsPerIp: setting({
    appliesTo: 'both',
    flag: 'max-connections-per-ip',
    env: 'SOCKETNAUT_MAX_CONNECTIONS_PER_IP',
    placeholder: '<n>',
    check: integer(0),
    default: 0,
    defaultText: 'no limit',
    help: 'open connections allowed from one client address',
  }),
  perIpPrefix: setting({
    appliesTo: 'both',
    flag: 'per-ip-prefix-v6',
    env: 'SOCKETNAUT_PER_IP_PREFIX_V6',
    placeholder: '<bits>',
    check: integer(1, 128),
    default: 64,
    help: 'IPv6 clients are one client per network of this many bits, for the per-address limit and `ip-hash`; 128 counts each address',
  }),
  queueLimit: setting({
    appliesTo: 'both',
    flag: 'queue-limit',
    env: 'SOCKETNAUT_QUEUE_LIMIT',
    placeholder: '<n>',
    check: integer(0),
    default: 1024,
    help: 'connections that may wait while no worker can take them',
  }),
  queueTimeout: setting({
    appliesTo: 'both',
    flag: 'queue-timeout',
    env: 'SOCKETNAUT_QUEUE_TIMEOUT',
    placeholder: '<ms>',
    check: timer(1),
    default: 10_000,
    help: 'ms a queued connection may wait before it is turned away',
  }),
  overloadResponse: setting({
    appliesTo: 'proxy',
    check: stringOrBuffer('a string or a Buffer'),
    help: 'bytes written to a connection closed because no worker could take it',
  }),
  handshakeTimeout: setting({
    appliesTo: 'both',
    flag: 'handshake-timeout',
    env: 'SOCKETNAUT_HANDSHAKE_TIMEOUT',
    placeholder: '<ms>',
    check: timer(1),
    default: 10_000,
    help: 'ms a TLS handshake at the proxy may take; the connection counts against the limits from its TCP accept',
  }),
  headersTimeout: setting({
    appliesTo: 'launcher',
    flag: 'headers-timeout',
    env: 'SOCKETNAUT_HEADERS_TIMEOUT',
    placeholder: '<ms>',
    check: headersTimeout,
    default: 10_000,
    help: "deadline for a request's headers (against slowloris), for the app's HTTP server when the app left Node's default",
  }),
  requestTimeout: setting({
    appliesTo: 'launcher',
    flag: 'request-timeout',
    env: 'SOCKETNAUT_REQUEST_TIMEOUT',
    placeholder: '<ms>',
    check: requestTimeout,
    default: 60_000,
    help: "deadline for a whole request, for the app's HTTP server when the app left Node's default",
  }),
  serverDefaults: setting({
    appliesTo: 'proxy',
    check: fields('an object', { headersTimeout: optional(headersTimeout), requestTimeout: optional(requestTimeout) }),
    help: "`{ headersTimeout, requestTimeout }` in ms, for HTTP servers in the workers left at Node's defaults",
  }),
  proxyProtocol: setting({
    appliesTo: 'both',
    flag: 'proxy-protocol',
    env: 'SOCKETNAUT_PROXY_PROTOCOL',
    check: boolean,
    default: false,
    help: 'connections open with a PROXY v1/v2 header from a balancer in front',
  }),
  proxyProtocolFrom: setting({
    appliesTo: 'both',
    flag: 'proxy-protocol-from',
    env: 'SOCKETNAUT_PROXY_PROTOCOL_FROM',
    placeholder: '<addr,...>',
    check: subnets,
    defaultText: 'anyone',
    help: 'addresses or CIDR subnets allowed to send the header',
  }),
  proxyProtocolTimeout: setting({
    appliesTo: 'both',
    flag: 'proxy-protocol-timeout',
    env: 'SOCKETNAUT_PROXY_PROTOCOL_TIMEOUT',
    placeholder: '<ms>',
    check: timer(1),
    default: 3_000,
    help: 'ms the whole header may take',
  }),
  measureHandoffLatency: setting({
    appliesTo: 'proxy',
    check: boolean,
    default: false,
    help: "emit `'handoff-latency'` (seconds) for each connection",
  }),
  metrics: setting({
    appliesTo: 'launcher',
    flag: 'metrics',
    env: 'SOCKETNAUT_METRICS',
    placeholder: '<[host:]port>',
    check: hostAndPort,
    defaultText: 'off',
    help: 'Prometheus metrics at `/metrics`, on their own port',
  }),
  health: setting({
    appliesTo: 'launcher',
    flag: 'health',
    env: 'SOCKETNAUT_HEALTH',
    placeholder: '<[host:]port>',
    check: hostAndPort,
    defaultText: 'off',
    help: 'probes `/ready` and `/live` for an orchestrator, on their own port (also on the metrics port)',
  }),
  watch: setting({
    appliesTo: 'launcher',
    flag: 'watch',
    env: 'SOCKETNAUT_WATCH',
    check: boolean,
    default: false,
    help: "a rolling reload when a file in the app module's directory changes, leaving out `node_modules`, `dist`, `build`, `out`, `coverage` and dot-directories",
  }),
  watchPath: setting({
    appliesTo: 'launcher',
    flag: 'watch-path',
    env: 'SOCKETNAUT_WATCH_PATH',
    placeholder: '<dir>',
    multiple: true,
    check: pathList('directories'),
    defaultText: "the app module's directory",
    help: 'watch this directory instead, leaving out the same; repeatable, or a list separated by `:`; implies `--watch`',
  }),
  envFile: setting({
    appliesTo: 'launcher',
    flag: 'env-file',
    env: 'SOCKETNAUT_ENV_FILE',
    placeholder: '<file>',
    multiple: true,
    check: pathList('files'),
    help: "variables set in the launcher's environment, and so every worker's, before anything starts; repeatable, later files winning; a variable already set wins",
  }),
  statusInterval: setting({
    appliesTo: 'launcher',
    flag: 'status-interval',
    env: 'SOCKETNAUT_STATUS_INTERVAL',
    placeholder: '<s>',
    check: seconds,
    defaultText: 'off',
    help: 'a line about the workers every s seconds (JSON lines when not a terminal)',
  }),
};

export type SettingName = keyof typeof settings;

type Resolved<S> = S extends Setting<infer T, infer D> ? (undefined extends D ? T | undefined : T) : never;

/** The value of a setting given as `value`, checked; its default when not given. Errors name it `label`. */
export function resolveSetting<K extends SettingName>(
  name: K,
  value: unknown,
  label: string = name,
): Resolved<(typeof settings)[K]> {
  const entry: Setting<unknown> = settings[name];
  return (value === undefined && !entry.required ? entry.default : checkValue(entry.check, label, value)) as Resolved<
    (typeof settings)[K]
  >;
}

/** The settings that apply to `side`, in the table's order. */
export function settingsOf(side: Side): [SettingName, Setting<unknown>][] {
  return (Object.entries(settings) as [SettingName, Setting<unknown>][]).filter(
    ([, entry]) => entry.appliesTo === side || entry.appliesTo === 'both',
  );
}
