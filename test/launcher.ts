import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Test } from 'tap';

export const cliPath = new URL('../dist/lib/launcher/cli.js', import.meta.url).pathname;

export interface RunningLauncher {
  child: ChildProcess;
  url: string;
  port: number;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

function collect(child: ChildProcess): { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  return { stdout: () => out, stderr: () => err };
}

/**
 * Runs the launcher until it prints its start-up line; killed in teardown if still running. Bound on
 * `host`, 127.0.0.1 unless told; null leaves the host to the app.
 */
export async function startLauncher(
  t: Test,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  { host = '127.0.0.1' }: { host?: string | null } = {},
): Promise<RunningLauncher> {
  const where = host === null ? ['--port', '0'] : ['--host', host, '--port', '0'];
  const child = spawn(process.execPath, [cliPath, ...where, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = collect(child);
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
  const started = new Promise<string>((resolve, reject) => {
    const onData = (): void => {
      const match = /socketnaut: ([a-z]+:\/\/\S+)/.exec(output.stdout());
      if (match) resolve(match[1]!);
    };
    child.stdout!.on('data', onData);
    void exited.then(({ code }) =>
      reject(new Error(`launcher exited with ${code} before starting:\n${output.stderr()}`)),
    );
  });
  const url = await started;
  return { child, url, port: Number(new URL(url).port), exited, ...output };
}

/** Runs the launcher to completion (for the cases where it must refuse to start). */
export async function runLauncher(args: string[], env: NodeJS.ProcessEnv = {}, timeout = 20_000): Promise<Finished> {
  const child = spawn(process.execPath, [cliPath, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = collect(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout: output.stdout(), stderr: output.stderr() };
}

const probes = (await import(new URL('../dist/lib/transports/handoff/probe.js', import.meta.url).href)) as {
  probeHandoff: () => Promise<string | undefined>;
};
const reuseportProbe = (await import(new URL('../dist/lib/transports/reuseport/probe.js', import.meta.url).href)) as {
  probeReuseport: () => Promise<string | undefined>;
};

/** The transports this Node can run, of `wanted`: Node 22 cannot move sockets between threads. */
export async function transportsHere<T extends 'handoff' | 'pipe' | 'reuseport'>(wanted: readonly T[]): Promise<T[]> {
  const unavailable = {
    handoff: await probes.probeHandoff(),
    pipe: undefined,
    reuseport: await reuseportProbe.probeReuseport(),
  };
  return wanted.filter((name) => unavailable[name] === undefined);
}
