import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BalancerName } from '../balancers/balancer.ts';
import { loadTls } from '../builtins.ts';
import {
  ERR_APP_FAILED,
  ERR_APP_NOT_FOUND,
  ERR_INVALID_OPTION,
  describeValue,
  withCause,
  type SocketnautError,
} from '../errors.ts';
import type { Level } from '../logging.ts';
import { serveHealth, type HealthServer } from '../main/health.ts';
import { serveMetrics, type MetricsServer } from '../main/metrics.ts';
import { ServiceProxy } from '../main/service-proxy.ts';
import { startStatusLine } from '../main/status.ts';
import { AUTO_PREFERS_REUSEPORT } from '../main/transport-choice.ts';
import type { ServiceProxyAgent } from '../main/worker-view.ts';
import { workerBounds } from '../options.ts';
import { resolveSetting, type SettingName } from '../settings.ts';
import type { TransportName } from '../transports/delivery.ts';
import { loadEnvFiles } from './env-file.ts';
import { besideProxy, boundPort, formatHost, listen } from './ports.ts';
import { watchApp, watchRoots } from './watch.ts';

export interface LaunchOptions {
  /** Path of the app's main module: the module every worker runs. */
  app: string;
  port?: number;
  host?: string;
  /** Sets both minWorkers and maxWorkers, when neither is given. Default: available parallelism. */
  workers?: number;
  minWorkers?: number;
  maxWorkers?: number;
  transport?: TransportName;
  balance?: BalancerName;
  /** PEM key and certificate: TLS then ends at the proxy. */
  tlsKey?: string | Buffer;
  tlsCert?: string | Buffer;
  logLevel?: Level;
  /**
   * How long open connections may take to finish, in milliseconds: at shutdown (SIGINT/SIGTERM), and
   * on an old worker at a reload (SIGHUP).
   */
  shutdownTimeout?: number;
  /** Failed starts of the app, with none serving, before launch gives up. */
  maxStartAttempts?: number;
  /**
   * How long a worker's event loop may stay stuck before the worker is replaced, in milliseconds: 0
   * (never), or 1000 and more. Stuck for 1 s, a worker already gets no new connection.
   */
  stallTimeout?: number;
  /** MB of V8 heap in use above which a worker is recycled, its successor serving first. */
  maxMemoryRestart?: number;
  maxConnections?: number;
  maxConnectionsPerIp?: number;
  /** IPv6 clients are one client per network of this many bits (64), for maxConnectionsPerIp and ip-hash. */
  perIpPrefix?: number;
  /** How long a TLS handshake may take, in milliseconds, when TLS ends at the proxy. */
  handshakeTimeout?: number;
  queueLimit?: number;
  queueTimeout?: number;
  /** Deadline for a request's headers in the app's HTTP server, in milliseconds. */
  headersTimeout?: number;
  /** Deadline for a whole request in the app's HTTP server, in milliseconds. */
  requestTimeout?: number;
  /** Serve Prometheus metrics at http://<host>:<port>/metrics, apart from the app's port. */
  metrics?: { port: number; host?: string };
  /** Serve the probes /ready and /live at http://<host>:<port>, apart from the app's port. */
  health?: { port: number; host?: string };
  /** Print a line about the pool every this many seconds, up to 2147483 (JSON lines when not on a terminal). */
  statusInterval?: number;
  /** Connections open with a PROXY protocol header from a balancer in front. */
  proxyProtocol?: boolean;
  proxyProtocolFrom?: string[];
  proxyProtocolTimeout?: number;
  /** A rolling reload when a file of the app changes, with a line about each on stderr. */
  watch?: boolean;
  /** The directories watched, instead of the app module's; implies `watch`. */
  watchPath?: string[];
  /** Files of variables set in process.env, unless already there, before the workers start; later files win. */
  envFile?: string[];
}

export interface Launched {
  proxy: ServiceProxy;
  server: net.Server;
  url: string;
  metrics: MetricsServer | undefined;
  health: HealthServer | undefined;
  /** The directories watched for changes, when watching. */
  watching: readonly string[] | undefined;
  /**
   * Stops accepting and waits for in-flight requests, up to the shutdown timeout. Each worker's app
   * hears `signal` (default 'SIGTERM') first, as it would from a process manager.
   */
  close(signal?: NodeJS.Signals): Promise<void>;
  /** A rolling reload whose old workers hear SIGTERM, then get the shutdown timeout to drain. */
  reload(): Promise<void>;
}

// The launcher knows it serves HTTP, so a connection no worker can take gets a proper answer.
const OVERLOADED =
  'HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n';

/** Starts the app on every worker behind one public port. Resolves once the pool serves. */
export async function launch(options: LaunchOptions): Promise<Launched> {
  const resolved = resolveLaunchOptions(options);
  const appPath = path.resolve(resolved.app);
  if (!fs.existsSync(appPath)) {
    throw new ERR_APP_NOT_FOUND(appPath);
  }
  const watching = resolved.watch || resolved.watchPath ? watchRoots(appPath, resolved.watchPath) : undefined;
  if (resolved.envFile) loadEnvFiles(resolved.envFile);
  const terminatesTls = resolved.tlsKey !== undefined;
  const server = terminatesTls
    ? loadTls().createServer({
        key: resolved.tlsKey,
        cert: resolved.tlsCert,
        handshakeTimeout: resolved.handshakeTimeout,
      })
    : net.createServer();
  await listen(server, resolved.port, resolved.host, joinsReusePort(resolved.transport, resolved.pool, terminatesTls));

  let proxy: ServiceProxy;
  try {
    proxy = new ServiceProxy({
      server,
      workerURL: pathToFileURL(appPath),
      ...resolved.pool,
      transport: resolved.transport,
      balance: resolved.balance,
      maxConnections: resolved.maxConnections,
      maxConnectionsPerIp: resolved.maxConnectionsPerIp,
      perIpPrefix: resolved.perIpPrefix,
      handshakeTimeout: resolved.handshakeTimeout,
      queueLimit: resolved.queueLimit,
      queueTimeout: resolved.queueTimeout,
      overloadResponse: OVERLOADED,
      measureHandoffLatency: resolved.metrics !== undefined,
      shutdownTimeout: resolved.shutdownTimeout,
      stallTimeout: resolved.stallTimeout,
      maxMemoryRestart: resolved.maxMemoryRestart,
      proxyProtocol: resolved.proxyProtocol,
      proxyProtocolFrom: resolved.proxyProtocolFrom,
      proxyProtocolTimeout: resolved.proxyProtocolTimeout,
      serverDefaults: { headersTimeout: resolved.headersTimeout, requestTimeout: resolved.requestTimeout },
      workerOptions: {
        env: { ...process.env, PORT: String(boundPort(server)), ...(resolved.host ? { HOST: resolved.host } : {}) },
      },
    });
  } catch (err) {
    server.close();
    throw err;
  }
  proxy.log.setLevel(resolved.logLevel);

  const { metrics: metricsAddress, health: healthAddress, shutdownTimeout, statusInterval } = resolved;
  const reload = (): Promise<void> => proxy.reload({ timeout: shutdownTimeout });
  const report = (line: string): void => console.error(`socketnaut: ${line}`);
  const watcher = await untilServing(proxy, resolved.maxStartAttempts)
    .then(() => watching && watchApp({ roots: watching, proxy, reload, report }))
    .catch(async (err: unknown) => {
      await proxy.shutdown({ timeout: 0 });
      throw err;
    });
  const stopWatching = (err: unknown): never => {
    watcher?.close();
    throw err;
  };
  // A side server that cannot listen stops the proxy, and so the watch.
  const metrics =
    metricsAddress &&
    (await besideProxy(proxy, metricsAddress, () =>
      serveMetrics(proxy, metricsAddress.port, metricsAddress.host),
    ).catch(stopWatching));
  const health =
    healthAddress &&
    (await besideProxy(
      proxy,
      healthAddress,
      () => serveHealth(proxy, healthAddress.port, healthAddress.host),
      metrics,
    ).catch(stopWatching));
  const stopStatus = statusInterval === undefined ? undefined : startStatusLine(proxy, statusInterval);

  const scheme = terminatesTls ? 'https' : 'http';
  const url = `${scheme}://${formatHost(resolved.host)}:${boundPort(server)}`;
  return {
    proxy,
    server,
    url,
    metrics,
    health,
    watching,
    close: async (signal = 'SIGTERM') => {
      stopStatus?.();
      watcher?.close();
      // The probes answer until the end: /ready says 503 from the start, /live still 200.
      await proxy.shutdown({ timeout: shutdownTimeout, signal });
      await Promise.all([metrics?.close(), health?.close()]);
    },
    reload,
  };
}

/** The options checked as the table of settings says, with their defaults. */
function resolveLaunchOptions(options: LaunchOptions) {
  if (options === null || typeof options !== 'object') {
    throw new ERR_INVALID_OPTION('options', 'an object', describeValue(options));
  }
  const value = <K extends SettingName & keyof LaunchOptions>(name: K) => resolveSetting(name, options[name]);
  const tlsKey = value('tlsKey');
  const tlsCert = value('tlsCert');
  if ((tlsKey === undefined) !== (tlsCert === undefined)) {
    const [missing, given] = tlsKey === undefined ? ['tlsKey', 'tlsCert'] : ['tlsCert', 'tlsKey'];
    throw new ERR_INVALID_OPTION(missing, `given with ${given}`, 'undefined');
  }
  // `workers` applies only when neither bound is given.
  const workers = value('workers');
  const fixedCount = options.minWorkers === undefined && options.maxWorkers === undefined;
  return {
    app: value('app'),
    port: value('port'),
    host: value('host'),
    pool: fixedCount ? { workerCount: workers ?? os.availableParallelism() } : workerBounds(options),
    transport: value('transport'),
    balance: value('balance'),
    tlsKey,
    tlsCert,
    logLevel: value('logLevel'),
    shutdownTimeout: value('shutdownTimeout'),
    stallTimeout: value('stallTimeout'),
    maxMemoryRestart: value('maxMemoryRestart'),
    maxStartAttempts: value('maxStartAttempts'),
    maxConnections: value('maxConnections'),
    maxConnectionsPerIp: value('maxConnectionsPerIp'),
    perIpPrefix: value('perIpPrefix'),
    handshakeTimeout: value('handshakeTimeout'),
    queueLimit: value('queueLimit'),
    queueTimeout: value('queueTimeout'),
    headersTimeout: value('headersTimeout'),
    requestTimeout: value('requestTimeout'),
    metrics: value('metrics'),
    health: value('health'),
    statusInterval: value('statusInterval'),
    proxyProtocol: value('proxyProtocol'),
    proxyProtocolFrom: value('proxyProtocolFrom'),
    proxyProtocolTimeout: value('proxyProtocolTimeout'),
    watch: value('watch'),
    watchPath: value('watchPath'),
    envFile: value('envFile'),
  };
}

// Rejects when the app has failed to start `attempts` times in a row without any worker serving.
function untilServing(proxy: ServiceProxy, attempts: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let failures = 0;
    let firstError: Error | undefined;
    const onError = (err: SocketnautError): void => {
      firstError ??= err;
      // Nothing will start: the transport asked for cannot run on this Node.
      if (err.code === 'SOCKETNAUT_ERR_HANDOFF_UNSUPPORTED' || err.code === 'SOCKETNAUT_ERR_REUSEPORT_UNSUPPORTED') {
        cleanup();
        reject(err);
      }
    };
    const onExit = (handle: ServiceProxyAgent): void => {
      if (handle.readyAt !== 0 || ++failures < attempts) return;
      cleanup();
      const cause = (firstError?.cause ?? firstError) as Error | undefined;
      reject(
        withCause(new ERR_APP_FAILED(String(failures), cause?.message ?? 'its worker exited while starting'), cause),
      );
    };
    const onReady = (): void => {
      cleanup();
      resolve();
    };
    const cleanup = (): void => {
      proxy.off('error', onError);
      proxy.off('worker-exit', onExit);
      proxy.off('ready', onReady);
    };
    proxy.on('error', onError);
    proxy.on('worker-exit', onExit);
    proxy.on('ready', onReady);
  });
}

/** Whether the workers' listeners may join the public port's: it is then bound with SO_REUSEPORT. */
function joinsReusePort(
  transport: TransportName,
  pool: { workerCount?: number; minWorkers?: number; maxWorkers?: number },
  terminatesTls: boolean,
): boolean {
  if (transport === 'reuseport') return true;
  const fixed = pool.workerCount !== undefined || pool.minWorkers === pool.maxWorkers;
  return transport === 'auto' && AUTO_PREFERS_REUSEPORT && fixed && !terminatesTls && process.platform === 'linux';
}
