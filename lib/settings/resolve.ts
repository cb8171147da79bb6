// The options of createServiceProxy() and launch() as code gives them: their types derived from the
// table of settings (lib/settings.ts), their values checked and defaulted by walking it.
import { ERR_INVALID_OPTION, describeValue } from '../errors.ts';
import { type SettingName, settings } from '../settings.ts';
import { checkValue } from './checks.ts';
import type { Setting, Side } from './setting.ts';

type Table = typeof settings;

/** The settings that apply to `side`, in the table's order. */
export function settingsOf(side: Side): [SettingName, Setting<unknown>][] {
  return (Object.entries(settings) as [SettingName, Setting<unknown>][]).filter(
    ([, entry]) => entry.appliesTo === side || entry.appliesTo === 'both',
  );
}

/** The names of the settings that apply to `side`. */
type NameOf<S extends Side> = {
  [K in SettingName]: Table[K]['appliesTo'] extends S | 'both' ? K : never;
}[SettingName];

/** The names of the settings that must be given. */
type RequiredName = { [K in SettingName]: Table[K] extends { required: true } ? K : never }[SettingName];

/** A setting's value as code gives it. */
type Given<E> = E extends Setting<infer T, infer _D> ? T : never;

/** A setting's value once checked: its default when not given, undefined when it has none. */
type Resolved<E> = E extends Setting<infer T, infer D> ? (undefined extends D ? T | undefined : T) : never;

/** The options of `side` as code gives them: those that must be given, and the others, optional. */
export type OptionsOf<S extends Side> = {
  [K in keyof Table as K extends NameOf<S> & RequiredName ? K : never]: Given<Table[K]>;
} & {
  [K in keyof Table as K extends Exclude<NameOf<S>, RequiredName> ? K : never]?: Given<Table[K]>;
};

/** The options of `side` once checked, each with its default where it has one. */
export type ResolvedOf<S extends Side> = {
  [K in keyof Table as K extends NameOf<S> ? K : never]: Resolved<Table[K]>;
};

/** The settings of both sides once checked: those launch() hands on to the proxy. */
export type SharedSettings = {
  [K in keyof Table as Table[K]['appliesTo'] extends 'both' ? K : never]: Resolved<Table[K]>;
};

/** The value of a setting given as `value`, checked; its default when not given. Errors name it `label`. */
export function resolveSetting<K extends SettingName>(
  name: K,
  value: unknown,
  label: string = name,
): Resolved<Table[K]> {
  const entry: Setting<unknown> = settings[name];
  return (value === undefined && !entry.required ? entry.default : checkValue(entry.check, label, value)) as Resolved<
    Table[K]
  >;
}

/** Every option of `side`, checked in the table's order; throws the first setting's error. */
export function resolveSettings<S extends Side>(side: S, options: OptionsOf<S>): ResolvedOf<S> {
  if (options === null || typeof options !== 'object') {
    throw new ERR_INVALID_OPTION('options', 'an object', describeValue(options));
  }
  const given: Record<string, unknown> = options;
  return Object.fromEntries(
    settingsOf(side).map(([name]) => [name, resolveSetting(name, given[name])]),
  ) as ResolvedOf<S>;
}

/** Out of the launcher's checked options, the settings of both sides, which launch() hands on to the proxy. */
export function sharedSettings(resolved: SharedSettings): SharedSettings {
  const values: Record<string, unknown> = resolved;
  return Object.fromEntries(
    settingsOf('launcher').flatMap(([name, entry]) => (entry.appliesTo === 'both' ? [[name, values[name]]] : [])),
  ) as SharedSettings;
}
