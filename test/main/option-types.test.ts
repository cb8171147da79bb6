// Type-level checks of the options of createServiceProxy() and launch(), which are derived from the
// table of settings: `npx tsc -p test/tsconfig.json` is the real test. Which options must be given,
// which side takes which, and that an option takes its check's type, not its default's.
import type net from 'node:net';
import type { WorkerOptions } from 'node:worker_threads';
import t from 'tap';
import type { BalancerName, LaunchOptions, Level, ServiceProxyOptions, TransportName } from 'socketnaut';
import type { ResolvedOptions } from '../../lib/options.ts';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type RequiredKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T];

const proxyRequired: Equal<RequiredKeys<ServiceProxyOptions>, 'server' | 'workerURL'> = true;
const launchRequired: Equal<RequiredKeys<LaunchOptions>, 'app'> = true;

const proxyOnly = ['server', 'workerURL', 'workerCount', 'workerOptions', 'serverDefaults'] as const;
const launcherOnly = ['app', 'port', 'workers', 'tlsKey', 'logLevel', 'metrics', 'watchPath'] as const;
const sidesApart: Equal<
  | Extract<keyof LaunchOptions, (typeof proxyOnly)[number]>
  | Extract<keyof ServiceProxyOptions, (typeof launcherOnly)[number]>,
  never
> = true;
const shared: Equal<
  Extract<keyof ServiceProxyOptions & keyof LaunchOptions, 'minWorkers' | 'transport'>,
  'minWorkers' | 'transport'
> = true;

const proxyValues: Equal<
  Pick<ServiceProxyOptions, 'server' | 'workerURL' | 'minWorkers' | 'transport' | 'balance' | 'workerOptions'>,
  {
    server: net.Server;
    workerURL: string | URL;
    minWorkers?: number;
    transport?: TransportName;
    balance?: BalancerName;
    workerOptions?: WorkerOptions;
  }
> = true;
const proxyObjects: Equal<
  Pick<ServiceProxyOptions, 'overloadResponse' | 'serverDefaults' | 'proxyProtocolFrom'>,
  {
    overloadResponse?: string | Buffer;
    serverDefaults?: { headersTimeout?: number; requestTimeout?: number };
    proxyProtocolFrom?: string[];
  }
> = true;
const launchValues: Equal<
  Pick<LaunchOptions, 'app' | 'port' | 'logLevel' | 'tlsKey' | 'metrics' | 'watchPath' | 'proxyProtocol'>,
  {
    app: string;
    port?: number;
    logLevel?: Level;
    tlsKey?: string | Buffer;
    metrics?: { port: number; host?: string };
    watchPath?: string[];
    proxyProtocol?: boolean;
  }
> = true;

// What the proxy runs with: a default makes an option certain; the computed options replace their settings.
const resolved: Equal<
  Pick<ResolvedOptions, 'server' | 'workerURL' | 'maxWorkers' | 'stallTimeout' | 'maxMemoryRestart' | 'workerOptions'>,
  {
    server: net.Server;
    workerURL: URL;
    maxWorkers: number;
    stallTimeout: number;
    maxMemoryRestart: number | undefined;
    workerOptions: WorkerOptions;
  }
> = true;
const folded: Equal<
  Extract<keyof ResolvedOptions, 'workerCount' | 'proxyProtocolFrom' | 'proxyProtocolTimeout'>,
  never
> = true;

function options(server: net.Server): [ServiceProxyOptions, LaunchOptions] {
  // @ts-expect-error the launcher's port is not createServiceProxy()'s
  const proxy: ServiceProxyOptions = { server, workerURL: 'app.js', port: 3000 };
  // @ts-expect-error workerCount is createServiceProxy()'s; launch() takes workers
  const launch: LaunchOptions = { app: 'app.js', workerCount: 2 };
  return [proxy, launch];
}

t.test('the option types are the ones the settings table describes', async (t) => {
  t.same(
    [proxyRequired, launchRequired, sidesApart, shared, proxyValues, proxyObjects, launchValues, resolved, folded],
    Array(9).fill(true),
  );
  t.equal(typeof options, 'function');
});
