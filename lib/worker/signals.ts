import os from 'node:os';

type Stop = () => void;

// Signals reach only the main thread, and process.kill(process.pid) from a worker would signal the
// whole process: both are made to mean, for this worker, what they mean for a process of its own,
// as under node:cluster.

const exit = process.exit;
let stopWorker: Stop = () => {};
let stopping = false;
/** The proxy said the worker has finished its connections, those on their way included. */
let finished = false;
/**
 * The worker ends as soon as its connections have finished, not once its event loop is empty: its app
 * called process.exit() while it stopped, or the signal that stopped it has no listener (its default
 * action is to end the process).
 */
let endOnceFinished = false;

/**
 * While the worker stops, an exit waits until its connections have finished, those on their way
 * included: the proxy says when (or its timeout ends the thread), and the worker then ends at once.
 */
function exitOnceStopped(code?: number | string | null): never {
  if (code !== undefined && code !== null) process.exitCode = code;
  if (finished) {
    exitWorker();
    return undefined as never;
  }
  endOnceFinished = true;
  stopWorker();
  return undefined as never;
}

/** Ends the thread as process.exit() does, its 'exit' listeners run, with the code the app set. */
export function exitWorker(): void {
  exit.call(process);
}

/**
 * The proxy says the worker has finished its connections. It ends now if its app asked to; otherwise
 * `release` lets go of socketnaut's own handles, and the thread ends once its app's work is done,
 * as a process does when its event loop is empty: Node then runs the 'beforeExit' and 'exit' listeners.
 */
export function finishWorker(release: () => void): void {
  finished = true;
  if (endOnceFinished) exitWorker();
  else release();
}

function signalName(signal: string | number): string | undefined {
  if (typeof signal === 'string') return signal;
  return Object.entries(os.constants.signals).find(([, number]) => number === signal)?.[0];
}

/**
 * Keeps a signal an app sends itself (`process.kill(process.pid, 'SIGTERM')`, as signal-exit does to
 * re-raise one) inside this worker: its listeners hear it, or, with none, the worker alone ends.
 */
export function keepSelfSignalsInWorker(stop: Stop): void {
  stopWorker = stop;
  const kill = process.kill;
  process.kill = function killOrSignalThisWorker(pid: number, signal: string | number = 'SIGTERM'): true {
    if (pid !== process.pid) return kill.call(process, pid, signal);
    if (signal === 0) return true;
    const name = signalName(signal);
    if (!stopping && name && name !== 'SIGKILL' && process.listenerCount(name) > 0) {
      process.nextTick(() => process.emit(name as NodeJS.Signals, name as NodeJS.Signals));
    } else if (stopping) {
      exitOnceStopped();
    } else {
      exit.call(process, 128 + (os.constants.signals[name as NodeJS.Signals] ?? 15));
    }
    return true;
  } as typeof process.kill;
}

/**
 * The proxy is stopping this worker, whose keep-alive connections have closed: its app's own
 * `process.on(signal)` cleanup runs now, and may go on after its connections have finished. A listener may call
 * process.exit(): the thread still ends only once its connections have finished, so that no request
 * in flight is lost. With no listener, the worker ends as soon as they have.
 */
export function deliverSignal(signal: NodeJS.Signals): void {
  if (stopping) return;
  stopping = true;
  if (process.listenerCount(signal) === 0) {
    endOnceFinished = true;
    return;
  }
  process.exit = exitOnceStopped as typeof process.exit;
  process.emit(signal, signal);
}
