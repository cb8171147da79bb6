// Every error socketnaut raises has a stable `code`; messages may change, codes do not.

export interface SocketnautError extends Error {
  code: string;
}

type ErrorClass = new (message?: string) => Error;

const codes: string[] = [];

/** Every code defined here, in the order defined: what the README's list of errors must match. */
export const errorCodes: readonly string[] = codes;

function defineError<B extends ErrorClass>(code: string, Base: B, format: (...args: string[]) => string) {
  codes.push(code);
  const Coded = class extends (Base as ErrorClass) {
    readonly code = code;
    constructor(...args: string[]) {
      super(format(...args));
      this.name = `${Base.name} [${code}]`;
    }
  };
  return Coded as unknown as new (
    ...args: string[]
  ) => InstanceType<B> & SocketnautError;
}

export const ERR_INVALID_OPTION = defineError(
  'SOCKETNAUT_ERR_INVALID_OPTION',
  TypeError,
  (name, expected, actual) => `The "${name}" option must be ${expected}. Received ${actual}`,
);

export const ERR_OPTION_OUT_OF_RANGE = defineError(
  'SOCKETNAUT_ERR_OPTION_OUT_OF_RANGE',
  RangeError,
  (name, expected, actual) => `The "${name}" option must be ${expected}. Received ${actual}`,
);

export const ERR_AGENT_EXISTS = defineError(
  'SOCKETNAUT_ERR_AGENT_EXISTS',
  Error,
  (reason) => `This worker already has a ServiceAgent ${reason}; a worker serves exactly one server`,
);

export const ERR_ADDRESS_UNKNOWN = defineError(
  'SOCKETNAUT_ERR_ADDRESS_UNKNOWN',
  Error,
  () => 'No proxy address information is known for this socket: it did not come through the ServiceProxy',
);

export const ERR_PLUGIN_REGISTERED_TWICE = defineError(
  'SOCKETNAUT_ERR_PLUGIN_REGISTERED_TWICE',
  Error,
  (plugin, advice) => `${plugin} is registered more than once on this app; ${advice}`,
);

export const ERR_UNSUPPORTED_FRAMEWORK = defineError(
  'SOCKETNAUT_ERR_UNSUPPORTED_FRAMEWORK',
  TypeError,
  (plugin, expected, actual) => `${plugin} must be used ${expected}. It was called with ${actual}`,
);

export const ERR_NOT_IN_WORKER = defineError(
  'SOCKETNAUT_ERR_NOT_IN_WORKER',
  Error,
  () => 'createServiceAgent() must be called in a worker started by a socketnaut ServiceProxy',
);

export const ERR_WORKER_BOOTSTRAP = defineError(
  'SOCKETNAUT_ERR_WORKER_BOOTSTRAP',
  Error,
  (url, message) => `The worker module ${url} failed to load: ${message}`,
);

export const ERR_HANDOFF_UNSUPPORTED = defineError(
  'SOCKETNAUT_ERR_HANDOFF_UNSUPPORTED',
  Error,
  (reason) => `transport "handoff" is not available: ${reason}`,
);

export const ERR_REUSEPORT_UNSUPPORTED = defineError(
  'SOCKETNAUT_ERR_REUSEPORT_UNSUPPORTED',
  Error,
  (reason) => `transport "reuseport" is not available: ${reason}`,
);

export const ERR_APP_NOT_FOUND = defineError(
  'SOCKETNAUT_ERR_APP_NOT_FOUND',
  Error,
  (file) => `Cannot find the app module ${file}`,
);

export const ERR_APP_FAILED = defineError(
  'SOCKETNAUT_ERR_APP_FAILED',
  Error,
  (attempts, message) => `The app failed to start ${attempts} times: ${message}`,
);

export const ERR_PORT_IN_USE = defineError(
  'SOCKETNAUT_ERR_PORT_IN_USE',
  Error,
  (where) => `The address ${where} is already in use`,
);

export const ERR_LISTEN = defineError(
  'SOCKETNAUT_ERR_LISTEN',
  Error,
  (where, message) => `Cannot listen on ${where}: ${message}`,
);

export const ERR_ENV_FILE = defineError(
  'SOCKETNAUT_ERR_ENV_FILE',
  Error,
  (file, reason) => `Cannot load the env file ${file}: ${reason}`,
);

export const ERR_NO_BOOT_DATA = defineError(
  'SOCKETNAUT_ERR_NO_BOOT_DATA',
  Error,
  () => "socketnaut's worker bootstrap was started without its boot data: only a ServiceProxy starts it",
);

export const ERR_WORKER_EXITED = defineError(
  'SOCKETNAUT_ERR_WORKER_EXITED',
  Error,
  (threadId, reason) => `Worker ${threadId} exited before it served: ${reason}`,
);

export const ERR_RELOAD_INTERRUPTED = defineError(
  'SOCKETNAUT_ERR_RELOAD_INTERRUPTED',
  Error,
  () => 'The reload was cut short: the proxy is shutting down, and every worker, old or new, is stopping',
);

export const ERR_WORKER_START = defineError(
  'SOCKETNAUT_ERR_WORKER_START',
  Error,
  (reason) => `A worker could not be started: ${reason}`,
);

export const ERR_WORKER_PROCESS_CONFLICT = defineError(
  'SOCKETNAUT_ERR_WORKER_PROCESS_CONFLICT',
  Error,
  (call, other) =>
    `${call} was refused: another worker of this process asked for ${other}, and all workers share the process's ` +
    'value. A worker may change it when every other worker that changed it asked for the same value',
);

export const ERR_WORKER_PROCESS_TIMEOUT = defineError(
  'SOCKETNAUT_ERR_WORKER_PROCESS_TIMEOUT',
  Error,
  (call, ms) => `${call} got no answer from the main thread within ${ms} ms, which makes it for the worker`,
);

export const ERR_WORKER_CREDENTIALS = defineError(
  'SOCKETNAUT_ERR_WORKER_CREDENTIALS',
  Error,
  (call) =>
    `${call} is not available in a worker: every worker and the launcher are one process, with one user. ` +
    "Start the launcher as the user the app should run as (a Dockerfile's USER, systemd's User=, sudo -u); to " +
    'listen on a port below 1024 without root, give node the CAP_NET_BIND_SERVICE capability',
);

/** A bad command line or environment variable for the launcher, which prints it and exits 2. */
export const ERR_USAGE = defineError('SOCKETNAUT_ERR_USAGE', Error, (message) => message);

export function withCause<E extends Error>(err: E, cause: unknown): E {
  if (cause !== undefined) err.cause = cause;
  return err;
}

/** How a function was called, for an error message: `(an instance of IncomingMessage, function next)`. */
export function describeArguments(args: ArrayLike<unknown>): string {
  return `(${Array.from(args, describeValue).join(', ')})`;
}

export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') return `an instance of ${value.constructor?.name ?? 'Object'}`;
  if (typeof value === 'string') return `type string ('${value.length > 40 ? `${value.slice(0, 40)}...` : value}')`;
  return `type ${typeof value} (${String(value)})`;
}
