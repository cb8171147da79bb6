// Node prints a process warning in the thread that emits it: the same deprecation once from each
// worker, and again from each worker a reload starts. The main thread prints each distinct one for
// the process instead, with a count of the workers that gave it.
import type { FromWorker, WorkerWarning } from '../protocol/messages.ts';

/** Sends the worker's warnings to the main thread, unless warnings are off or traced here (Node's way then). */
export function relayWarnings(post: (message: FromWorker) => void): void {
  const print = process.listeners('warning').find((listener) => listener.name === 'onWarning');
  const traced = process.traceProcessWarnings || process.traceDeprecation;
  const redirected = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((arg) =>
    arg.includes('--redirect-warnings'),
  );
  if (!print || traced || redirected) return;
  process.off('warning', print);
  process.on('warning', (warning: Error & { code?: unknown; detail?: unknown }) => {
    if (warning.name === 'DeprecationWarning' && process.noDeprecation) return;
    const relayed: WorkerWarning = { name: warning.name, message: warning.message };
    if (typeof warning.code === 'string') relayed.code = warning.code;
    if (typeof warning.detail === 'string') relayed.detail = warning.detail;
    post({ type: 'warning', warning: relayed });
  });
}
