import type { WorkerBootData } from '../protocol/messages.ts';

// Kept on globalThis so that two copies of socketnaut loaded in one worker (say, the launcher's and
// an app's own node_modules copy) still share the one channel to the proxy.
const kContext = Symbol.for('socketnaut.workerContext');

type Global = { [kContext]?: WorkerBootData };

export function getWorkerContext(): WorkerBootData | undefined {
  return (globalThis as Global)[kContext];
}

export function setWorkerContext(context: WorkerBootData): void {
  (globalThis as Global)[kContext] = context;
}

export function isBootData(value: unknown): value is WorkerBootData {
  return typeof value === 'object' && value !== null && (value as WorkerBootData).socketnautWorker === 1;
}

const kLoaded = Symbol.for('socketnaut.workerModuleLoaded');
type LoadedFlag = { [kLoaded]?: true };

/** The bootstrap calls this once the worker module has finished loading. */
export function markModuleLoaded(): void {
  (globalThis as LoadedFlag)[kLoaded] = true;
}

export function isModuleLoaded(): boolean {
  return (globalThis as LoadedFlag)[kLoaded] === true;
}
