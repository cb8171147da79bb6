// Real services for the scale-out tests: Redis, HAProxy and nginx from the system's packages, each
// started on free loopback ports with its files in a temporary directory, and stopped in teardown.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Test } from 'tap';
import { freePort } from './helpers.ts';

export { freePort };

export const binaries = {
  redis: '/usr/bin/redis-server',
  haproxy: '/usr/sbin/haproxy',
  nginx: '/usr/sbin/nginx',
} as const;

export type ServiceName = keyof typeof binaries;

const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 3_000;

function missing(name: ServiceName): string | undefined {
  const binary = binaries[name];
  if (!fs.existsSync(binary)) return binary;
  if (name === 'nginx' && !fs.existsSync(NGINX_STREAM_MODULE)) return NGINX_STREAM_MODULE;
  return undefined;
}

/**
 * For tap's `skip` option: why a test cannot run here, or false. Under CI nothing is skipped: a
 * missing service then makes the test fail when it starts the service.
 */
export function skipUnlessInstalled(...names: ServiceName[]): string | false {
  if (process.env.CI) return false;
  const absent = names.map(missing).filter((file) => file !== undefined);
  if (absent.length === 0) return false;
  return `not installed: ${absent.join(', ')} (Debian: apt-get install redis-server haproxy nginx-light libnginx-mod-stream)`;
}

export interface Service {
  child: ChildProcess;
  /** The temporary directory holding the service's configuration, pid file and logs. */
  dir: string;
  /** What the service printed so far, for failure messages. */
  output: () => string;
  /** Resolves once the process has exited. */
  exited: Promise<unknown>;
}

function tempDir(t: Test, name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `socketnaut-${name}-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Whether something listens on 127.0.0.1:port. Read from /proc/net/tcp where there is one, because a
 * probe connection would reach the balancer's backends as a connection cut short.
 */
function isListening(port: number): Promise<boolean> {
  let table: string;
  try {
    table = fs.readFileSync('/proc/net/tcp', 'utf8');
  } catch {
    return canConnect(port);
  }
  // The address is in host byte order, the port in network order.
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const locals = [`0100007F:${hexPort}`, `7F000001:${hexPort}`];
  const LISTEN = '0A';
  const listening = table.split('\n').some((line) => {
    const fields = line.trim().split(/\s+/);
    return locals.includes(fields[1]!) && fields[3] === LISTEN;
  });
  return Promise.resolve(listening);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Runs `binary` until it listens on all of `ports`; stopped (TERM, then KILL) in teardown. */
async function run(t: Test, name: ServiceName, args: string[], ports: number[], dir: string): Promise<Service> {
  const absent = missing(name);
  if (absent) throw new Error(`${name} is required but ${absent} is missing`);
  const child = spawn(binaries[name], args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.on('error', (err) => (output += `\n${err.message}`));
  // A process that could not be spawned emits 'error' instead of 'exit'.
  let ended = false;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  }).then(() => {
    ended = true;
  });
  t.teardown(async () => {
    if (ended) return;
    child.kill('SIGTERM');
    const stopped = await Promise.race([exited.then(() => true), delay(STOP_TIMEOUT_MS, false, { ref: false })]);
    if (!stopped) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (const port of ports) {
    while (!(await isListening(port))) {
      if (ended) {
        throw new Error(
          `${name} exited (${child.exitCode ?? child.signalCode ?? 'not started'}) before serving:\n${output}`,
        );
      }
      if (Date.now() > deadline)
        throw new Error(`${name} did not accept connections on port ${port} within ${START_TIMEOUT_MS} ms:\n${output}`);
      await delay(20);
    }
  }
  return { child, dir, output: () => output, exited };
}

/** The loopback ports a configuration listens on (`bind 127.0.0.1:N` or `listen 127.0.0.1:N`). */
function listenedPorts(config: string): number[] {
  const ports = [...config.matchAll(/^\s*(?:bind|listen)\s+127\.0\.0\.1:(\d+)/gm)].map((match) => Number(match[1]));
  if (ports.length === 0) throw new Error('the configuration listens on no 127.0.0.1:<port>');
  return ports;
}

export interface RedisService extends Service {
  port: number;
  url: string;
}

/** A redis-server with no persistence on a free loopback port. */
export async function startRedis(t: Test): Promise<RedisService> {
  const dir = tempDir(t, 'redis');
  const port = await freePort();
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
  ];
  const service = await run(t, 'redis', args, [port], dir);
  return { ...service, port, url: `redis://127.0.0.1:${port}` };
}

/** HAProxy in the foreground with `config` (a whole haproxy.cfg), once it accepts on every `bind`. */
export async function startHaproxy(t: Test, config: string): Promise<Service> {
  const dir = tempDir(t, 'haproxy');
  const file = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(file, config);
  return run(t, 'haproxy', ['-db', '-f', file], listenedPorts(config), dir);
}

/**
 * nginx in the foreground with `config` after the main-context lines this machine needs (the stream
 * module, pid and error log in the temporary directory, and as root a `user` that keeps root: the
 * default would drop to www-data).
 */
export async function startNginx(t: Test, config: string): Promise<Service> {
  const dir = tempDir(t, 'nginx');
  const file = path.join(dir, 'nginx.conf');
  const errorLog = path.join(dir, 'error.log');
  const main = [
    `load_module ${NGINX_STREAM_MODULE};`,
    process.getuid?.() === 0 ? 'user root;' : '',
    'worker_processes 1;',
    `pid ${path.join(dir, 'nginx.pid')};`,
    `error_log ${errorLog} warn;`,
    'events { worker_connections 256; }',
  ];
  fs.writeFileSync(file, `${main.join('\n')}\n${config}\n`);
  const service = await run(
    t,
    'nginx',
    ['-e', errorLog, '-p', dir, '-c', file, '-g', 'daemon off;'],
    listenedPorts(config),
    dir,
  );
  const output = service.output;
  return { ...service, output: () => `${output()}${fs.existsSync(errorLog) ? fs.readFileSync(errorLog, 'utf8') : ''}` };
}

/** HAProxy in TCP mode with two frontends in front of `launcherPort`: one sends PROXY v1 headers, the other v2. */
export function haproxyConfig(launcherPort: number, ports: { v1: number; v2: number }): string {
  return `
global
  maxconn 256

defaults
  mode tcp
  timeout connect 2s
  timeout client 10s
  timeout server 10s

frontend with-v1
  bind 127.0.0.1:${ports.v1}
  default_backend launcher-v1

backend launcher-v1
  server s1 127.0.0.1:${launcherPort} send-proxy

frontend with-v2
  bind 127.0.0.1:${ports.v2}
  default_backend launcher-v2

backend launcher-v2
  server s1 127.0.0.1:${launcherPort} send-proxy-v2
`;
}
