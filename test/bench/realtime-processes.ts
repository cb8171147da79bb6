// The processes of the realtime benchmark: the three servers, each in a process group of its own so
// that it goes with every process it forked, and the load processes (realtime-load.ts) it talks to
// over IPC. Every wait has a deadline, and whatever was started is killed by its id at the end.
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { freePort } from './helpers.ts';
import type { Command } from './realtime-load.ts';

export const realtimeConfigs = ['one-process', 'cluster', 'socketnaut'] as const;
export type RealtimeConfig = (typeof realtimeConfigs)[number];

const START_TIMEOUT_MS = 20_000;
const EXIT_TIMEOUT_MS = 5_000;
const OUTPUT_KEPT = 64 * 1024;
const OUTPUT_SHOWN = 1500;

const appScript = new URL('./realtime-app.js', import.meta.url).pathname;
const clusterScript = new URL('./realtime-cluster.js', import.meta.url).pathname;
const loadScript = new URL('./realtime-load.ts', import.meta.url).pathname;
const cliScript = new URL('../../dist/lib/launcher/cli.js', import.meta.url).pathname;

/** What runs, and whether it leads a process group of its own (a server) or not (a load process). */
const running = new Map<ChildProcess, boolean>();

function kill(child: ChildProcess, group: boolean): void {
  try {
    if (group) process.kill(-child.pid!, 'SIGKILL');
    else child.kill('SIGKILL');
  } catch {
    // Gone already.
  }
}

function killAll(): void {
  for (const [child, group] of running) kill(child, group);
}

// The servers are process groups of their own, which Ctrl-C at the terminal does not reach.
function onSignal(signal: NodeJS.Signals): void {
  killAll();
  process.kill(process.pid, signal);
}

/** Until the returned function is called, the servers are killed if the benchmark exits or is stopped. */
export function killServersOnExit(): () => void {
  process.on('exit', killAll);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => {
    killAll();
    process.off('exit', killAll);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

export interface RealtimeServer {
  config: RealtimeConfig;
  child: ChildProcess;
  port: number;
  /** socketnaut's transport, as the launcher reports it. */
  transport: string | undefined;
}

function command(config: RealtimeConfig, port: number, workers: number): string[] {
  switch (config) {
    case 'one-process':
      return [appScript];
    case 'cluster':
      return [clusterScript, String(port), String(workers)];
    case 'socketnaut':
      return [cliScript, '--host', '127.0.0.1', '--port', String(port), '--workers', String(workers), appScript];
  }
}

/** The start and the end of what a server printed. */
function excerpt(output: string): string {
  if (output.length <= 2 * OUTPUT_SHOWN) return output;
  return `${output.slice(0, OUTPUT_SHOWN)}\n[…]\n${output.slice(-OUTPUT_SHOWN)}`;
}

/** Starts a server and waits until it serves; rejects with what it printed if it does not within 20 s. */
export async function startRealtimeServer(config: RealtimeConfig, workers: number): Promise<RealtimeServer> {
  const port = await freePort();
  const child = spawn(process.execPath, command(config, port, workers), {
    detached: true,
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.set(child, true);
  child.once('exit', () => running.delete(child));
  let stdout = '';
  let stderr = '';
  // What a server prints first tells why it did not start; later output is not kept.
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout = (stdout + chunk).slice(0, OUTPUT_KEPT)));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(0, OUTPUT_KEPT)));
  const ready = config === 'socketnaut' ? /socketnaut: http\S+ .*transport (\w+)/ : /^READY$/m;
  try {
    const match = await new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('not serving within 20 s')), START_TIMEOUT_MS).unref();
      child.stdout!.on('data', () => {
        const found = ready.exec(stdout);
        if (found) {
          clearTimeout(timer);
          resolve(found);
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`exited with ${code ?? signal} before serving`));
      });
    });
    return { config, child, port, transport: match[1] };
  } catch (err) {
    await stopRealtimeServer({ config, child, port, transport: undefined });
    throw new Error(`${config} server: ${(err as Error).message}\n${excerpt(stderr || stdout)}`);
  }
}

export async function stopRealtimeServer(server: RealtimeServer): Promise<void> {
  const { child } = server;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  kill(child, true);
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, EXIT_TIMEOUT_MS).unref())]);
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** A forked realtime-load.ts: commands with deadlines, and the broadcasts its clients have all received. */
export class LoadProcess {
  readonly child: ChildProcess;
  /** Called with `seq` once every client of this process has received broadcast `seq`. */
  onDelivered: (seq: number) => void = () => {};
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #exit: string | undefined;

  /** `index`: which of the load processes this is, so that their clients' addresses differ. */
  constructor(index: number) {
    this.child = fork(loadScript, [], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, BENCH_LOAD_INDEX: String(index) },
    });
    running.set(this.child, false);
    this.child.on('message', (message: { id?: number; result?: unknown; error?: string; delivered?: number }) => {
      if (message.delivered !== undefined) return this.onDelivered(message.delivered);
      const pending = this.#pending.get(message.id!);
      if (!pending) return;
      this.#pending.delete(message.id!);
      clearTimeout(pending.timer);
      if (message.error !== undefined) pending.reject(new Error(message.error));
      else pending.resolve(message.result);
    });
    this.child.once('exit', (code, signal) => {
      running.delete(this.child);
      this.#exit = `load process exited with ${code ?? signal}`;
      for (const pending of this.#pending.values()) {
        clearTimeout(pending.timer);
        pending.reject(new Error(this.#exit));
      }
      this.#pending.clear();
    });
  }

  get alive(): boolean {
    return this.#exit === undefined;
  }

  request<T>(command: Command, timeoutMs: number): Promise<T> {
    if (this.#exit) return Promise.reject(new Error(this.#exit));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`load process: no answer to '${command.cmd}' within ${timeoutMs} ms`));
      }, timeoutMs).unref();
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      this.child.send({ id, command });
    });
  }

  /** A command with no answer. */
  send(command: Command): void {
    if (!this.#exit) this.child.send({ id: 0, command });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    kill(this.child, false);
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, EXIT_TIMEOUT_MS).unref())]);
  }
}
