// The checks of settings. Each serves a value given in code and text given on the command line or
// in the environment, so that both are held to the same rule.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { WorkerOptions } from 'node:worker_threads';
import { SyslogLevel } from 'streams-logger';
import { ERR_INVALID_OPTION, ERR_OPTION_OUT_OF_RANGE, ERR_USAGE, describeValue } from '../errors.ts';

/** Node runs a longer timer after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** What is wrong with a value. */
export interface Problem {
  /** What the value must be: 'an integer >= 1'. */
  expected: string;
  /** The value has the right type, but is not an integer or is out of range. */
  outOfRange?: boolean;
  /** Where in the value the problem is (`.port`, `[2]`), and what is there. */
  at?: { path: string; value: unknown };
}

export interface Check<T> {
  /** Undefined when `value` is a valid T. */
  problem(value: unknown): Problem | undefined;
  /** The value that a flag's or environment variable's text stands for; the text itself by default. */
  fromText?(text: string, source: string): unknown;
  /** What valid text looks like, where that differs from what a valid value is. */
  expectedText?: string;
  /** The names a value may take, for help texts. */
  choices?: readonly string[];
  /** A value as text, the way a flag gives it. */
  toText?(value: T): string;
}

/** Returns `value` if it passes `check`; otherwise throws an error naming the option. */
export function checkValue<T>(check: Check<T>, name: string, value: unknown): T {
  const problem = check.problem(value);
  if (!problem) return value as T;
  const where = problem.at ? name + problem.at.path : name;
  const found = problem.at ? problem.at.value : value;
  throw problem.outOfRange
    ? new ERR_OPTION_OUT_OF_RANGE(where, problem.expected, String(found))
    : new ERR_INVALID_OPTION(where, problem.expected, describeValue(found));
}

// Decimal digits only: Number() would also take '0x10', '1e3', ' 5' and '+5'.
const DECIMAL_INTEGER = /^\d+$/;
const DECIMAL_NUMBER = /^(\d+\.?\d*|\.\d+)$/;

export function integer(min: number, max = Number.MAX_SAFE_INTEGER): Check<number> {
  const expected = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
  return {
    problem: (value) => {
      if (typeof value !== 'number' || Number.isNaN(value)) return { expected };
      return Number.isInteger(value) && value >= min && value <= max ? undefined : { expected, outOfRange: true };
    },
    fromText: (text) => (DECIMAL_INTEGER.test(text) ? Number(text) : NaN),
  };
}

/** Milliseconds, for a timer. */
export function timer(min: number): Check<number> {
  return integer(min, MAX_TIMER_MS);
}

/** Milliseconds for a timer of at least `min`, or 0 for none. */
export function timerOrOff(min: number): Check<number> {
  const expected = `0 or an integer from ${min} to ${MAX_TIMER_MS}`;
  return {
    problem: (value) => {
      if (typeof value !== 'number' || Number.isNaN(value)) return { expected };
      const valid = value === 0 || (Number.isInteger(value) && value >= min && value <= MAX_TIMER_MS);
      return valid ? undefined : { expected, outOfRange: true };
    },
    fromText: (text) => (DECIMAL_INTEGER.test(text) ? Number(text) : NaN),
  };
}

/** Seconds (not only whole ones), for a repeating timer. */
export const seconds: Check<number> = {
  problem: (value) => {
    if (typeof value !== 'number' || Number.isNaN(value)) return { expected: 'a number > 0' };
    if (value <= 0) return { expected: 'a number > 0', outOfRange: true };
    const max = Math.floor(MAX_TIMER_MS / 1000);
    return value > max ? { expected: `a number <= ${max}`, outOfRange: true } : undefined;
  },
  fromText: (text) => (DECIMAL_NUMBER.test(text) ? Number(text) : NaN),
};

export function oneOf<T extends string>(choices: readonly T[]): Check<T> {
  const expected = `one of ${choices.join(', ')}`;
  return { choices, problem: (value) => (choices.includes(value as T) ? undefined : { expected }) };
}

export const boolean: Check<boolean> = {
  problem: (value) => (typeof value === 'boolean' ? undefined : { expected: 'a boolean' }),
  fromText: (text) => (text === '1' ? true : text === '0' ? false : text),
  expectedText: '1 or 0',
};

export function nonEmptyString(expected: string): Check<string> {
  return { problem: (value) => (typeof value === 'string' && value !== '' ? undefined : { expected }) };
}

export function stringOrBuffer(expected: string): Check<string | Buffer> {
  return { problem: (value) => (typeof value === 'string' || Buffer.isBuffer(value) ? undefined : { expected }) };
}

/** A PEM key or certificate: its contents in code, the name of its file on the command line. */
export const pem: Check<string | Buffer> = {
  ...stringOrBuffer('a PEM string or Buffer'),
  fromText: (file, source) => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new ERR_USAGE(`${source}: cannot read ${file}: ${(err as Error).message}`);
    }
  },
};

const levels: Record<string, SyslogLevel> = {
  debug: SyslogLevel.DEBUG,
  info: SyslogLevel.INFO,
  notice: SyslogLevel.NOTICE,
  warn: SyslogLevel.WARN,
  error: SyslogLevel.ERROR,
};

export const logLevel: Check<SyslogLevel> = {
  choices: Object.keys(levels),
  problem: (value) =>
    Object.values(levels).includes(value as SyslogLevel)
      ? undefined
      : { expected: 'one of Level.DEBUG, Level.INFO, Level.NOTICE, Level.WARN, Level.ERROR' },
  fromText: (text) => levels[text.toLowerCase()] ?? text,
  expectedText: `one of ${Object.keys(levels).join(', ')}`,
  toText: (level) => SyslogLevel[level].toLowerCase(),
};

export function optional<T>(check: Check<T>): Check<T | undefined> {
  return { ...check, problem: (value) => (value === undefined ? undefined : check.problem(value)) };
}

/** An object whose fields each pass their own check. */
export function fields<T extends object>(expected: string, checks: { [K in keyof T]-?: Check<T[K]> }): Check<T> {
  return {
    problem: (value) => {
      if (value === null || typeof value !== 'object') return { expected };
      for (const [key, check] of Object.entries<Check<unknown>>(checks)) {
        const field = (value as Record<string, unknown>)[key];
        const problem = check.problem(field);
        if (problem)
          return {
            ...problem,
            at: { path: `.${key}${problem.at?.path ?? ''}`, value: problem.at ? problem.at.value : field },
          };
      }
      return undefined;
    },
  };
}

export const host = nonEmptyString('a host name or address');

// "9100", "127.0.0.1:9100" or "[::1]:9100".
export const hostAndPort: Check<{ port: number; host?: string }> = {
  ...fields<{ port: number; host?: string }>('an object with a port and, optionally, a host', {
    port: integer(0, 65535),
    host: optional(host),
  }),
  fromText: (text) => {
    const match = /^(?:\[([^\]]+)\]:|([^:]+):)?(\d+)$/.exec(text);
    if (!match) return text;
    const name = match[1] ?? match[2];
    return name === undefined ? { port: Number(match[3]) } : { host: name, port: Number(match[3]) };
  },
  expectedText: '[host:]port',
};

export interface Subnet {
  address: string;
  family: 'ipv4' | 'ipv6';
  /** Undefined for a single address. */
  prefix: number | undefined;
}

/** An address or a CIDR subnet, like '10.0.0.0/8'; undefined when `entry` is neither. */
export function parseSubnet(entry: string): Subnet | undefined {
  const [address = '', prefix, extra] = entry.split('/');
  const family = net.isIPv4(address) ? 'ipv4' : net.isIPv6(address) ? 'ipv6' : undefined;
  if (!family || extra !== undefined) return undefined;
  if (prefix === undefined) return { address, family, prefix: undefined };
  const bits = Number(prefix);
  if (!DECIMAL_INTEGER.test(prefix) || bits > (family === 'ipv4' ? 32 : 128)) return undefined;
  return { address, family, prefix: bits };
}

export const subnets: Check<string[]> = {
  problem: (value) => {
    if (!Array.isArray(value)) return { expected: 'an array of addresses or CIDR subnets' };
    const i = value.findIndex((entry: unknown) => typeof entry !== 'string' || !parseSubnet(entry));
    return i === -1
      ? undefined
      : { expected: "an address or a CIDR subnet, like '10.0.0.0/8'", at: { path: `[${i}]`, value: value[i] } };
  },
  fromText: (text) =>
    text
      .split(',')
      .map((entry) => entry.trim())
      .filter(Boolean),
  expectedText: "comma-separated addresses or CIDR subnets, like '10.0.0.0/8,::1'",
};

/** Paths of files or directories: an array in code, a list separated by path.delimiter as text. */
export function pathList(what: string): Check<string[]> {
  return {
    problem: (value) => {
      if (!Array.isArray(value) || value.length === 0) return { expected: `a non-empty array of paths of ${what}` };
      const i = value.findIndex((entry: unknown) => typeof entry !== 'string' || entry === '');
      return i === -1 ? undefined : { expected: 'a non-empty string', at: { path: `[${i}]`, value: value[i] } };
    },
    fromText: (text) => (text === '' ? text : text.split(path.delimiter).filter(Boolean)),
    expectedText: `paths of ${what}, separated by '${path.delimiter}'`,
  };
}

export function instanceOf<T>(Class: abstract new (...args: never[]) => T, expected: string): Check<T> {
  return { problem: (value) => (value instanceof Class ? undefined : { expected }) };
}

export const workerURL: Check<string | URL> = {
  problem: (value) =>
    value instanceof URL || (typeof value === 'string' && value !== '')
      ? undefined
      : { expected: 'a non-empty string or a URL' },
};

export const workerOptions: Check<WorkerOptions> = {
  problem: (value) => {
    if (value === null || typeof value !== 'object') return { expected: 'an object' };
    const { eval: evaluates } = value as WorkerOptions;
    return evaluates
      ? { expected: 'unset; workerURL names a module', at: { path: '.eval', value: evaluates } }
      : undefined;
  },
};
