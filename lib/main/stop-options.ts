import os from 'node:os';
import { ERR_INVALID_OPTION, describeValue } from '../errors.ts';
import { drainTimeout } from '../options.ts';

export interface ShutdownOptions {
  /** How long open connections may take to finish before their workers are stopped, in milliseconds. */
  timeout?: number;
  /**
   * Emitted in each stopping worker to the app's own `process.on(signal)` listeners, before the
   * worker stops taking connections, as a process manager would send it. Default 'SIGTERM'; false
   * for none.
   */
  signal?: NodeJS.Signals | false;
}

export type ReloadOptions = ShutdownOptions;

export interface StopSettings {
  timeout: number;
  signal: NodeJS.Signals | undefined;
}

export function resolveStopOptions(options: ShutdownOptions): StopSettings {
  if (options === null || typeof options !== 'object')
    throw new ERR_INVALID_OPTION('options', 'an object', describeValue(options));
  const timeout = drainTimeout(options.timeout);
  const signal = options.signal ?? 'SIGTERM';
  if (signal !== false && !(typeof signal === 'string' && Object.hasOwn(os.constants.signals, signal))) {
    throw new ERR_INVALID_OPTION('signal', "a signal name such as 'SIGTERM', or false", describeValue(signal));
  }
  return { timeout, signal: signal === false ? undefined : signal };
}
