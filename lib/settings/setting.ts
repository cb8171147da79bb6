// What one entry of the settings table (lib/settings.ts) holds.
import type { Check } from './checks.ts';

export type Side = 'launcher' | 'proxy';

export interface Setting<T, D extends T | undefined = T | undefined> {
  /** launch() and the launcher's command line, createServiceProxy(), or both. */
  appliesTo: Side | 'both';
  /** The launcher's flag, without its dashes. */
  flag?: string;
  /** A one-letter alias of the flag. */
  short?: string;
  env?: string;
  /** What the flag takes, as its help shows it: '<n>', '<ms>'. */
  placeholder?: string;
  /**
   * The flag may be given more than once, each time adding to a list: the check's fromText turns the
   * text of each, and of the environment variable, into an array.
   */
  multiple?: true;
  check: Check<T>;
  required?: boolean;
  default?: D;
  /** The default in words, where it is computed ('available parallelism') or means something ('no limit'). */
  defaultText?: string;
  /** What the setting does, in Markdown. */
  help: string;
}

export function setting<T, const D extends T | undefined = undefined>(entry: Setting<T, D>): Setting<T, D> {
  return entry;
}

/** A setting without a default, which must be given. */
export function required<T>(entry: Omit<Setting<T>, 'required' | 'default' | 'defaultText'>): Setting<T, T> {
  return { ...entry, required: true };
}
