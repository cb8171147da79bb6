import type { MessagePort } from 'node:worker_threads';
import type { ProcessCall, ProcessCallAnswer, SystemFailure } from '../protocol/messages.ts';
import type { WorkerRecord } from './worker-record.ts';

type Api = ProcessCall['api'];
type Value = string | number;

// A worker's process.chdir() and process.umask(mask), made here on its behalf (see
// worker/process-apis.ts). The directory and the mask are the process's, shared by every thread,
// and every worker runs the same module, which asks for the same value: a worker may change one
// unless another live worker asked for a different value, which it would pull out from under that
// worker (its relative paths, its new files' modes). A worker's values go with it when it exits.

/** Makes the process calls that workers ask for, remembering which value each live worker asked. */
export class ProcessCalls {
  readonly #asked = new WeakMap<WorkerRecord, Map<Api, Value>>();
  readonly #live: () => Iterable<WorkerRecord>;

  constructor(live: () => Iterable<WorkerRecord>) {
    this.#live = live;
  }

  /** Makes `call` for `record`, or refuses it, and wakes the worker, which is waiting on `answered`. */
  answer(record: WorkerRecord, call: ProcessCall, reply: MessagePort, answered: SharedArrayBuffer): void {
    reply.postMessage(this.#make(record, call) satisfies ProcessCallAnswer);
    reply.close();
    const cell = new Int32Array(answered);
    Atomics.store(cell, 0, 1);
    Atomics.notify(cell, 0);
  }

  #make(record: WorkerRecord, call: ProcessCall): ProcessCallAnswer {
    const value = call.api === 'chdir' ? call.directory : call.mask;
    // A mask Node refuses (the worker made an octal string a number) gets Node's own error below.
    const refusable =
      call.api === 'chdir' || (Number.isInteger(value) && Number(value) >= 0 && Number(value) <= 0xffffffff);
    for (const other of refusable ? this.#live() : []) {
      const theirs = other === record ? undefined : this.#asked.get(other)?.get(call.api);
      if (theirs !== undefined && theirs !== value) return { conflict: theirs };
    }
    let result: number | undefined;
    try {
      result = call.api === 'chdir' ? void process.chdir(call.directory) : process.umask(call.mask);
    } catch (err) {
      return { failure: failureOf(err) };
    }
    const asked = this.#asked.get(record) ?? new Map<Api, Value>();
    this.#asked.set(record, asked.set(call.api, value));
    return { value: result };
  }
}

function failureOf(err: unknown): SystemFailure {
  const e = (err instanceof Error ? err : new Error(String(err))) as NodeJS.ErrnoException & { dest?: string };
  return {
    name: e.name,
    message: e.message,
    code: e.code,
    errno: e.errno,
    syscall: e.syscall,
    path: e.path,
    dest: e.dest,
  };
}
