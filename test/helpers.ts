import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { Test } from 'tap';
import { consoleHandler, createServiceProxy, Level, type ServiceProxy, type ServiceProxyOptions } from 'socketnaut';

// Tests read results, not logs: keep the console to warnings and worse unless asked.
consoleHandler.setLevel(process.env.SOCKETNAUT_TEST_LOG === 'debug' ? Level.DEBUG : Level.WARN);

export const transports = ['handoff', 'pipe'] as const;
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
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const proxy = createServiceProxy({ ...options, server });
  t.teardown(() => proxy.shutdown({ timeout: 2000 }));
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
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options }, () => resolve(socket));
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

/** Resolves once `check` holds, polling each `interval` ms; rejects after `timeout` ms. */
export async function waitFor(check: () => boolean, timeout = 5000, interval = 10): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeout} ms`);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}
