// What one entry of the settings table (lib/settings.ts) holds.
import type { Check } from './checks.ts';

export type Side = 'launcher' | 'proxy';
/** launch() and the launcher's command line, createServiceProxy(), or both. */
export type AppliesTo = Side | 'both';

// `A` keeps each entry's own appliesTo in the table's type, from which the option types are derived.
export interface Setting<T, D extends T | undefined = T | undefined, A extends AppliesTo = AppliesTo> {
  appliesTo: A;
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

export function setting<T, const D extends T | undefined = undefined, const A extends AppliesTo = AppliesTo>(
  entry: Setting<T, D, A>,
): Setting<T, D, A> {
  return entry;
}

/** A setting without a default, which must be given. */
export function required<T, const A extends AppliesTo>(
  entry: Omit<Setting<T, T, A>, 'required' | 'default' | 'defaultText'>,
): Setting<T, T, A> & { required: true } {
  return { ...entry, required: true };
}
