import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import type { Test } from 'tap';

import { transports as workerTransports } from '../helpers.ts';
import { skipUnlessSupported } from '../transport-support.ts';

export { atDeadline, DeadlineError, observeFor, pace, waitFor, withDeadline, type WaitOptions } from '../helpers.ts';

/**
 * The reliability suite holds every transport this Node can run to the same standard, reuseport's
 * workers accepting on their own included (not on Node 22, which cannot move a listener to a worker).
 */
export const transports = [...workerTransports, ...(skipUnlessSupported('reuseport') ? [] : (['reuseport'] as const))];

export function reliabilityFixture(name: string): URL {
  return new URL(`./fixtures/${name}`, import.meta.url);
}

export const appFixture = reliabilityFixture('app.js');

/** Settings the app fixture reads from its workerData. */
export interface AppConfig {
  socketTimeout?: number;
  websocket?: boolean;
}

const CHUNK = Buffer.alloc(64 * 1024, 'socketnaut ');

/** The bytes the app fixture sends for a body of `bytes` bytes. */
export function pattern(bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += CHUNK.length) CHUNK.copy(out, i, 0, Math.min(CHUNK.length, bytes - i));
  return out;
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

export function summary(values: number[], digits = 0): string {
  if (values.length === 0) return 'none';
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  const f = (n: number): string => n.toFixed(digits);
  return `min ${f(sorted[0]!)} / median ${f(median)} / max ${f(sorted.at(-1)!)} (n=${values.length})`;
}

export const MB = 1024 * 1024;

export function mb(bytes: number): string {
  return `${(bytes / MB).toFixed(1)} MB`;
}

/** Resident memory of a process, in bytes, from /proc. */
export function rssOf(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

export function fdsOf(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

// Clock ticks per second for /proc/<pid>/stat; 100 on every Linux this runs on.
const CLOCK_TICKS = 100;

/** CPU time of a whole process (every thread, user + system), in milliseconds. */
export function cpuOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

/**
 * The environment for a child process under test: without the test runner's NODE_OPTIONS, whose
 * preloaded modules would also load in every worker thread and slow each start several times over.
 */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.NODE_OPTIONS;
  return env;
}

export interface ChildEvent {
  event: string;
  threadId?: number;
  code?: number | string;
  reason?: string;
  errorCode?: string;
  message?: string;
  at: number;
  [key: string]: unknown;
}

export interface Snapshot {
  at: number;
  rss: number;
  memory: NodeJS.MemoryUsage;
  fds: number;
  cpu: NodeJS.CpuUsage;
  mainThreadCpu: NodeJS.CpuUsage;
  stats: {
    accepted: number;
    dispatched: number;
    redispatched: number;
    refused: number;
    queued: number;
    expired: number;
    acceptErrors: number;
    queuedNow: number;
    workers: { threadId: number; state: string; connections: number; totalConnections: number; heapUsed?: number }[];
  };
}

/**
 * Node options that fix the size of V8's young generation in every thread. V8 otherwise grows it
 * under load, up to 64 MiB per semi-space in each thread on this machine, which swings a process's
 * RSS by more than the memory tests' limits; fixed, RSS shows what the process holds on to.
 */
export const FIXED_YOUNG_GENERATION = ['--min-semi-space-size=2', '--max-semi-space-size=2'];

export interface ChildProxyOptions {
  transport?: 'auto' | 'handoff' | 'pipe' | 'reuseport';
  workerCount?: number;
  /** A module under test/reliability/fixtures/; the app fixture by default. */
  app?: string;
  appConfig?: AppConfig;
  proxy?: Record<string, unknown>;
  workerOptions?: Record<string, unknown>;
  /** Start without waiting for 'ready' (for modules that never start). */
  expectFailure?: boolean;
  exposeGc?: boolean;
  logLevel?: string;
  /** A command line to run node under, such as ['prlimit', '--nofile=256:256']. */
  prefix?: string[];
  /** Extra options for node itself. */
  nodeArgs?: string[];
}

export interface ChildProxy {
  child: ChildProcess;
  pid: number;
  port: number;
  transport: string;
  events: ChildEvent[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  command<T = unknown>(cmd: string, args?: Record<string, unknown>): Promise<T>;
  snapshot(): Promise<Snapshot>;
  /** Resolves with the first event named `name` that satisfies `match` from now on. */
  next(name: string, match?: (event: ChildEvent) => boolean, timeout?: number): Promise<ChildEvent>;
  /** Shuts the proxy down and resolves with the child's exit. */
  shutdown(timeout?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A proxy running the app fixture in a process of its own; killed in teardown if still running. */
export async function startChildProxy(t: Test, options: ChildProxyOptions = {}): Promise<ChildProxy> {
  const { prefix = [], nodeArgs: extraNodeArgs = [], ...childOptions } = options;
  const script = reliabilityFixture('proxy-child.js').pathname;
  const nodeArgs = [
    ...extraNodeArgs,
    ...(options.exposeGc ? ['--expose-gc'] : []),
    script,
    JSON.stringify(childOptions),
  ];
  const [file, ...args] =
    prefix.length > 0 ? [...prefix, process.execPath, ...nodeArgs] : [process.execPath, ...nodeArgs];
  const child = spawn(file!, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: childEnv() });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdout!.resume();
  // 'close' comes after the last message over IPC and the last of stderr, unlike 'exit'.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });

  const events: ChildEvent[] = [];
  const waiters = new Set<(event: ChildEvent) => void>();
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();
  let nextId = 0;
  child.on('message', (message: { id?: number; result?: unknown; error?: string } & Partial<ChildEvent>) => {
    if (message.event) {
      events.push(message as ChildEvent);
      for (const waiter of [...waiters]) waiter(message as ChildEvent);
      return;
    }
    const call = pending.get(message.id!);
    pending.delete(message.id!);
    if (message.error !== undefined) call?.reject(new Error(message.error));
    else call?.resolve(message.result);
  });
  void exited.then(({ code, signal }) => {
    for (const call of pending.values())
      call.reject(new Error(`proxy child exited (${code ?? signal}) before answering:\n${stderr}`));
    pending.clear();
  });

  const next = (
    name: string,
    match: (event: ChildEvent) => boolean = () => true,
    timeout = 10_000,
  ): Promise<ChildEvent> =>
    new Promise((resolve, reject) => {
      const settle = (outcome: () => void): void => {
        clearTimeout(timer);
        waiters.delete(waiter);
        outcome();
      };
      const timer = setTimeout(
        () => settle(() => reject(new Error(`no '${name}' event from the proxy child within ${timeout} ms`))),
        timeout,
      );
      const waiter = (event: ChildEvent): void => {
        if (event.event === name && match(event)) settle(() => resolve(event));
      };
      waiters.add(waiter);
      // A child that is gone sends nothing more: fail now, and clear the timer, rather than at the deadline.
      void closed.then(() =>
        settle(() =>
          reject(
            new Error(
              `proxy child exited (${child.exitCode ?? child.signalCode}) before a '${name}' event:\n${stderr}`,
            ),
          ),
        ),
      );
    });

  const command = <T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = ++nextId;
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      child.send({ id, cmd, ...args });
    });

  const ready = await Promise.race([
    next('ready', undefined, 30_000),
    exited.then(({ code, signal }) =>
      Promise.reject(new Error(`proxy child exited (${code ?? signal}) before it was ready:\n${stderr}`)),
    ),
  ]);
  return {
    child,
    pid: child.pid!,
    port: ready.port as number,
    transport: ready.transport as string,
    events,
    stderr: () => stderr,
    exited,
    command,
    snapshot: () => command<Snapshot>('snapshot'),
    next,
    shutdown: async (timeout = 2000) => {
      await command('shutdown', { timeout });
      return exited;
    },
  };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  threadId: number;
}

/** One HTTP request, with a deadline: a request that neither answers nor fails is a failure too. */
export function httpRequest(
  port: number,
  options: http.RequestOptions & {
    body?: Buffer | string;
    deadline?: number;
    onSocket?: (socket: net.Socket) => void;
  } = {},
): Promise<Reply> {
  const { body, deadline = 10_000, onSocket, ...rest } = options;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, agent: false, ...rest }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', fail);
      res.on('end', () => {
        clearTimeout(timer);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
          threadId: Number(res.headers['x-thread-id']),
        });
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`no reply within ${deadline} ms`)), deadline);
    function fail(err: Error): void {
      clearTimeout(timer);
      reject(err);
    }
    req.on('error', fail);
    if (onSocket) req.on('socket', onSocket);
    req.end(body);
  });
}
