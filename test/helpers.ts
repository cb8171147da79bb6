import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { Test } from 'tap';
import { consoleHandler, createServiceProxy, Level, type ServiceProxy, type ServiceProxyOptions } from 'socketnaut';
import { skipUnlessSupported } from './transport-support.ts';

// Tests read results, not logs: keep the console to warnings and worse unless asked.
consoleHandler.setLevel(process.env.SOCKETNAUT_TEST_LOG === 'debug' ? Level.DEBUG : Level.WARN);

/** The transports tests run in, of those this Node can run: Node 22 cannot move a socket, so no hand-off there. */
export const transports = (['handoff', 'pipe'] as const).filter((name) => !skipUnlessSupported(name));
export const balancers = ['least-connections', 'round-robin', 'ip-hash', 'least-loaded'] as const;

export function fixture(name: string): URL {
  return new URL(`./fixtures/${name}`, import.meta.url);
}

export const tlsFiles = {
  key: fs.readFileSync(new URL('./fixtures/tls/key.pem', import.meta.url)),
  cert: fs.readFileSync(new URL('./fixtures/tls/cert.pem', import.meta.url)),
};

export interface StartedProxy {
  proxy: ServiceProxy;
  server: net.Server;
  port: number;
}

/** A proxy on a loopback port of its own, ready to serve; shut down in the test's teardown. */
export async function startProxy(
  t: Test,
  options: Omit<ServiceProxyOptions, 'server'> & { server?: net.Server },
): Promise<StartedProxy> {
  const server = options.server ?? net.createServer();
  let proxy: ServiceProxy | undefined;
  // One teardown for both: a proxy closes its server when it shuts down.
  t.teardown(() => (proxy ? proxy.shutdown({ timeout: 2000 }) : void server.close()));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  proxy = createServiceProxy({ ...options, server });
  const failed = once(proxy, 'error').then(([err]) => Promise.reject(err as Error));
  await Promise.race([once(proxy, 'ready'), failed]);
  return { proxy, server, port: (server.address() as net.AddressInfo).port };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

export interface RequestOptions extends http.RequestOptions {
  body?: string | Buffer;
}

/** One HTTP request; a fresh connection unless an agent is given. */
export function request(port: number, options: RequestOptions = {}): Promise<Reply> {
  const { body, ...rest } = options;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, agent: false, ...rest }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const all = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: all, text: all.toString() });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function requestJSON<T = Record<string, unknown>>(port: number, options: RequestOptions = {}): Promise<T> {
  const reply = await request(port, options);
  if (reply.status !== 200) throw new Error(`HTTP ${reply.status}: ${reply.text}`);
  return JSON.parse(reply.text) as T;
}

export function tlsConnect(port: number, options: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options }, () =>
      resolve(socket),
    );
    socket.once('error', reject);
  });
}

/** A loopback port that was free a moment ago, for a program that cannot report the port it got. */
export async function freePort(): Promise<number> {
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Whether a TCP connection to host:port is accepted: 'connected', or the error code. */
export function connectOutcome(port: number, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

/** The error of a wait that reached its deadline (withDeadline, waitFor). */
export class DeadlineError extends Error {
  override name = 'DeadlineError';
}

/**
 * A rejection handler for a wait whose deadline is an outcome rather than a failure: resolves with
 * `value` if the wait reached its deadline, and rethrows any other error (a check that threw).
 * `waitFor(check, options).then(() => true, atDeadline(false))`
 */
export function atDeadline<T>(value: T): (err: unknown) => T {
  return (err) => {
    if (err instanceof DeadlineError) return value;
    throw err;
  };
}

/**
 * Rejects with "<what>: not within <ms> ms" unless `promise` settles first. The timer is cleared
 * either way, so a deadline that did not expire keeps nothing alive.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

export interface WaitOptions {
  /** Milliseconds before giving up; 5000 by default. */
  timeout?: number;
  /** Milliseconds between two checks; 10 by default. */
  interval?: number;
  /**
   * What is waited for, for the error. A function is called only when the wait fails, so that it can
   * say what was seen last.
   */
  what?: string | (() => string);
  /**
   * Asked after each check that did not find: a reason rejects at once, without waiting for the
   * deadline (such as a process the wait depends on having exited).
   */
  failure?: () => string | undefined;
}

/** What a check returns while the condition does not hold yet. */
type NotYet = undefined | null | false;

/**
 * Polls `check` until it returns something other than undefined, null or false, and resolves with
 * that: `true` for a condition, or the value found. `check` may be async; an error it throws ends
 * the wait. Rejects with a DeadlineError, "<what>: not within <timeout> ms", at the deadline.
 *
 * Also takes the timeout and interval as numbers, `waitFor(check, timeout, interval)`.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  options?: WaitOptions | number,
  interval?: number,
): Promise<Exclude<T, NotYet>> {
  const settings: WaitOptions = typeof options === 'number' ? { timeout: options, interval } : { interval, ...options };
  const { timeout = 5000, failure } = settings;
  const every = settings.interval ?? 10;
  const what = (): string => (typeof settings.what === 'function' ? settings.what() : (settings.what ?? 'condition'));
  const deadline = Date.now() + timeout;
  for (;;) {
    const found = await check();
    if (found !== undefined && found !== null && found !== false) return found as Exclude<T, NotYet>;
    const failed = failure?.();
    if (failed !== undefined) throw new Error(`${what()}: ${failed}`);
    if (Date.now() > deadline)
      throw new DeadlineError(
        settings.what === undefined ? `condition not met within ${timeout} ms` : `${what()}: not within ${timeout} ms`,
      );
    await new Promise((resolve) => setTimeout(resolve, every));
  }
}

/**
 * An observation window: waits `ms` on purpose, for a test that asserts what does NOT happen within
 * a time (no restart, no reaping), or that measures a rate or a share over a fixed time. Nothing could
 * be awaited instead: the event under watch is the one that must not come. Not for waiting until
 * something happens; use waitFor or an event for that.
 */
export function observeFor(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Pacing: a pause on purpose between the steps of a load loop or a schedule, so that load is spread
 * over time (a request every 100 ms, a reload every 2 s). Waits nothing out; `ms` below 0 is 0, so
 * that `pace(start + at - now())` waits until a point in a schedule.
 */
export function pace(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
