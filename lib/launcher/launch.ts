import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadTls } from '../builtins.ts';
import { ERR_APP_FAILED, ERR_APP_NOT_FOUND, ERR_INVALID_OPTION, withCause, type SocketnautError } from '../errors.ts';
import { serveHealth, type HealthServer } from '../main/health.ts';
import { serveMetrics, type MetricsServer } from '../main/metrics.ts';
import { ServiceProxy } from '../main/service-proxy.ts';
import { startStatusLine } from '../main/status.ts';
import { AUTO_PREFERS_REUSEPORT } from '../main/transport-choice.ts';
import type { WorkerView } from '../main/worker-view.ts';
import type { PublicListen } from '../protocol/messages.ts';
import { workerBounds } from '../options.ts';
import { type OptionsOf, resolveSettings, sharedSettings } from '../settings/resolve.ts';
import type { TransportName } from '../transports/delivery.ts';
import { loadEnvFiles } from './env-file.ts';
import { besideProxy, boundPort, formatAddress, freePort, listen, publicBinding } from './ports.ts';
import { watchApp, watchRoots } from './watch.ts';

/**
 * The options of launch(): one for each setting of the launcher in the table of settings
 * (lib/settings.ts), whose help README.md's table of the launcher's flags shows.
 */
export interface LaunchOptions extends OptionsOf<'launcher'> {}

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
  const createServer = (): net.Server =>
    terminatesTls
      ? loadTls().createServer({
          key: resolved.tlsKey,
          cert: resolved.tlsCert,
          handshakeTimeout: resolved.handshakeTimeout,
        })
      : net.createServer();
  const server = createServer();
  const reusePort = joinsReusePort(resolved.transport, resolved.pool, terminatesTls);
  // Bound where told now; otherwise where the first worker's app asks, as node:cluster's primary binds
  // a port, on the port the app is told in PORT.
  const told = resolved.host !== undefined;
  if (told) await listen(server, { port: resolved.port, host: resolved.host }, reusePort);
  const port = told ? boundPort(server) : resolved.port || (await freePort({ port: 0 }));
  const binding = publicBinding(server, createServer, { port, told, reusePort });

  // The pool's bounds come from `pool`, which `workers` may have set.
  const { minWorkers, maxWorkers, ...shared } = sharedSettings(resolved);
  let proxy: ServiceProxy;
  try {
    proxy = new ServiceProxy(
      {
        ...shared,
        ...resolved.pool,
        server,
        workerURL: pathToFileURL(appPath),
        overloadResponse: OVERLOADED,
        measureHandoffLatency: resolved.metrics !== undefined,
        serverDefaults: { headersTimeout: resolved.headersTimeout, requestTimeout: resolved.requestTimeout },
        workerOptions: {
          env: { ...process.env, PORT: String(port), ...(resolved.host ? { HOST: resolved.host } : {}) },
        },
      },
      { binder: binding.binder },
    );
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

  const url = `${schemeOf(binding.served(), terminatesTls)}://${formatAddress(server.address() as net.AddressInfo)}`;
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

/** The launcher's options: every setting checked in the table's order, then the pool's size from them. */
function resolveLaunchOptions(options: LaunchOptions) {
  const { workers, ...checked } = resolveSettings('launcher', options);
  const { tlsKey, tlsCert } = checked;
  if ((tlsKey === undefined) !== (tlsCert === undefined)) {
    const [missing, given] = tlsKey === undefined ? ['tlsKey', 'tlsCert'] : ['tlsCert', 'tlsKey'];
    throw new ERR_INVALID_OPTION(missing, `given with ${given}`, 'undefined');
  }
  // `workers` applies only when neither bound is given.
  const fixedCount = options.minWorkers === undefined && options.maxWorkers === undefined;
  return {
    ...checked,
    pool: fixedCount
      ? { workerCount: workers ?? os.availableParallelism() }
      : workerBounds({ ...checked, workerCount: undefined }, options),
  };
}

const FATAL_AT_START = new Set([
  'SOCKETNAUT_ERR_HANDOFF_UNSUPPORTED',
  'SOCKETNAUT_ERR_REUSEPORT_UNSUPPORTED',
  'SOCKETNAUT_ERR_PORT_IN_USE',
  'SOCKETNAUT_ERR_LISTEN',
]);

// Rejects when the app has failed to start `attempts` times in a row without any worker serving.
function untilServing(proxy: ServiceProxy, attempts: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let failures = 0;
    let firstError: Error | undefined;
    const onError = (err: SocketnautError): void => {
      firstError ??= err;
      // Nothing will start: the transport asked for cannot run on this Node, or the public port cannot be bound.
      if (FATAL_AT_START.has(err.code)) {
        cleanup();
        reject(err);
      }
    };
    const onExit = (handle: WorkerView): void => {
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
    // Until the app listens, the public port may not be bound, and the restarts wait on unref'd
    // timers: nothing else keeps the launcher running meanwhile.
    const keepRunning = setInterval(() => {}, 60_000);
    const cleanup = (): void => {
      clearInterval(keepRunning);
      proxy.off('error', onError);
      proxy.off('worker-exit', onExit);
      proxy.off('ready', onReady);
    };
    proxy.on('error', onError);
    proxy.on('worker-exit', onExit);
    proxy.on('ready', onReady);
  });
}

/**
 * The start-up line's scheme: the app's server's own when it serves HTTP (https where TLS ends at the
 * proxy); otherwise tcp, or tls where TLS ends at the proxy.
 */
function schemeOf(served: PublicListen | undefined, terminatesTls: boolean): string {
  if (served?.scheme === undefined) return terminatesTls ? 'tls' : 'tcp';
  return terminatesTls ? 'https' : served.scheme;
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
