// The framework plugins' errors, in the style of lib/errors.ts: the `code` is stable, the message may change.
import { describeValue, type SocketnautError } from '../lib/errors.ts';

type ErrorClass = new (message?: string) => Error;

function defineError<B extends ErrorClass>(code: string, Base: B, format: (...args: string[]) => string) {
  const Coded = class extends (Base as ErrorClass) {
    readonly code = code;
    constructor(...args: string[]) {
      super(format(...args));
      this.name = `${Base.name} [${code}]`;
    }
  };
  return Coded as unknown as new (...args: string[]) => InstanceType<B> & SocketnautError;
}

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

/** How a plugin was called, for an error message: `(an instance of IncomingMessage, function next)`. */
export function describeArguments(args: ArrayLike<unknown>): string {
  return `(${Array.from(args, describeValue).join(', ')})`;
}
