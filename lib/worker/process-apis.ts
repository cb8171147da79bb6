// Node refuses in a worker the process calls that change what all threads share: the working
// directory, the umask, the user and groups. An app written for a process of its own makes them at
// start-up (Next.js standalone's server.js begins with process.chdir(__dirname)), and every worker runs
// that same code: chdir() and umask(mask) are made by the main thread on the worker's behalf, while
// the worker waits; the user and groups stay the launcher's, with an error that says what to do.
import path from 'node:path';
import { MessageChannel, type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import {
  describeValue,
  ERR_WORKER_CREDENTIALS,
  ERR_WORKER_PROCESS_CONFLICT,
  ERR_WORKER_PROCESS_TIMEOUT,
} from '../errors.ts';
import type { FromWorker, ProcessCall, ProcessCallAnswer, SystemFailure } from '../protocol/messages.ts';

/** How long a worker waits for the main thread to make a call, whose loop is free but for a moment's work. */
export const PROCESS_CALL_TIMEOUT_MS = 10_000;

const CREDENTIALS = ['setuid', 'setgid', 'seteuid', 'setegid', 'setgroups', 'initgroups'] as const;

/** Makes process.chdir() and process.umask(mask) work in this worker, and setuid() and the like explain themselves. */
export function provideProcessApis(port: MessagePort): void {
  const call = (what: ProcessCall): number | undefined => callOnMainThread(port, what);
  process.chdir = function chdir(directory: string): void {
    if (typeof directory !== 'string') throw invalidArgument('directory', 'of type string', directory);
    call({ api: 'chdir', directory: path.resolve(process.cwd(), directory) });
  };
  const umask = process.umask.bind(process) as () => number;
  process.umask = function umaskOnMainThread(mask?: number | string): number {
    if (mask === undefined) return umask();
    if (typeof mask !== 'number' && typeof mask !== 'string')
      throw invalidArgument('mask', 'of type number or string', mask);
    return call({
      api: 'umask',
      mask: typeof mask === 'string' && /^[0-7]+$/.test(mask) ? Number.parseInt(mask, 8) : mask,
    })!;
  } as typeof process.umask;
  const credentials = process as unknown as Record<string, unknown>;
  for (const name of CREDENTIALS) {
    if (typeof credentials[name] !== 'function') continue;
    credentials[name] = () => {
      throw new ERR_WORKER_CREDENTIALS(`process.${name}()`);
    };
  }
}

/**
 * Asks the main thread to make `what`, and blocks until it answers or `timeout` ms pass: process.chdir()
 * and process.umask() are synchronous. The answer comes on a port of this call's own, read here
 * without the event loop, once the main thread has set the shared cell.
 */
export function callOnMainThread(
  port: MessagePort,
  what: ProcessCall,
  timeout = PROCESS_CALL_TIMEOUT_MS,
): number | undefined {
  const { port1: reply, port2: replyToWorker } = new MessageChannel();
  const answered = new SharedArrayBuffer(4);
  const message: FromWorker = { type: 'process-call', call: what, reply: replyToWorker, answered };
  try {
    port.postMessage(message, [replyToWorker]);
    const waited = Atomics.wait(new Int32Array(answered), 0, 0, timeout);
    const answer = receiveMessageOnPort(reply)?.message as ProcessCallAnswer | undefined;
    if (waited === 'timed-out' || !answer) throw new ERR_WORKER_PROCESS_TIMEOUT(describeCall(what), String(timeout));
    if ('conflict' in answer) throw new ERR_WORKER_PROCESS_CONFLICT(describeCall(what), shown(answer.conflict));
    if ('failure' in answer) throw systemError(answer.failure);
    return answer.value;
  } finally {
    reply.close();
  }
}

function describeCall(what: ProcessCall): string {
  return what.api === 'chdir' ? `process.chdir(${shown(what.directory)})` : `process.umask(${shown(what.mask)})`;
}

/** A directory as a string literal, a mask in octal. */
function shown(value: string | number): string {
  return typeof value === 'number' ? `0o${value.toString(8)}` : `'${value}'`;
}

/** The main thread's error, raised again here as Node would have raised it, with this worker's stack. */
function systemError(failure: SystemFailure): Error {
  const Base = failure.name === 'TypeError' ? TypeError : failure.name === 'RangeError' ? RangeError : Error;
  const err = new Base(failure.message);
  for (const key of ['code', 'errno', 'syscall', 'path', 'dest'] as const) {
    if (failure[key] !== undefined) Object.assign(err, { [key]: failure[key] });
  }
  return err;
}

/** Node's own error for an argument of the wrong type, raised before anything is asked of the main thread. */
function invalidArgument(name: string, expected: string, actual: unknown): TypeError {
  const err = new TypeError(`The "${name}" argument must be ${expected}. Received ${describeValue(actual)}`);
  return Object.assign(err, { code: 'ERR_INVALID_ARG_TYPE' });
}
