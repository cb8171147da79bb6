// The launcher's side of the settings table: its flags for util.parseArgs, what flags and
// environment variables say, and the --help text.
import type { ParseArgsConfig } from 'node:util';
import { ERR_USAGE } from '../errors.ts';
import type { Setting, SettingName } from '../settings.ts';
import { settingsOf } from './resolve.ts';
import { boolean } from './checks.ts';

/** Flags that are commands rather than settings. */
export const commandFlags = [
  { flag: 'help', short: 'h', help: 'show this text' },
  { flag: 'version', short: 'v', help: 'show the version' },
] as const;

type Flagged = Setting<unknown> & { flag: string };

function flaggedSettings(): Flagged[] {
  return settingsOf('launcher')
    .map(([, entry]) => entry)
    .filter((entry): entry is Flagged => entry.flag !== undefined);
}

export const commandLineOptions: NonNullable<ParseArgsConfig['options']> = Object.fromEntries([
  ...flaggedSettings().map((entry) => [
    entry.flag,
    {
      type: entry.check === boolean ? 'boolean' : 'string',
      ...(entry.short && { short: entry.short }),
      ...(entry.multiple && { multiple: true }),
    },
  ]),
  ...commandFlags.map(({ flag, short }) => [flag, { type: 'boolean', short }]),
]);

/** The value that the text of a flag or an environment variable (its `source`) gives a setting, checked. */
function settingFromText(entry: Setting<unknown>, text: string, source: string): unknown {
  const value = entry.check.fromText ? entry.check.fromText(text, source) : text;
  const problem = entry.check.problem(value);
  if (problem) throw new ERR_USAGE(`${source} must be ${entry.check.expectedText ?? problem.expected}, not '${text}'`);
  return value;
}

/**
 * The launcher's settings, by option name, from parseArgs' `values` or else from the environment;
 * an empty environment variable counts as unset; `only` narrows them to those named. Throws ERR_USAGE
 * for a value that fails its check.
 */
export function readCommandLine(
  values: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  only?: readonly SettingName[],
): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  for (const [name, entry] of settingsOf('launcher')) {
    if (only && !only.includes(name)) continue;
    const given = entry.flag === undefined ? undefined : values[entry.flag];
    const fromEnv = entry.env === undefined ? undefined : env[entry.env];
    if (typeof given === 'boolean') options[name] = given;
    else if (typeof given === 'string') options[name] = settingFromText(entry, given, `--${entry.flag}`);
    // A repeated flag: each occurrence's list adds to those before it.
    else if (Array.isArray(given))
      options[name] = given.flatMap((text: string) => settingFromText(entry, text, `--${entry.flag}`) as unknown[]);
    else if (fromEnv) options[name] = settingFromText(entry, fromEnv, entry.env!);
  }
  return options;
}

/** 'text' for --help; Markdown for the README's tables of the launcher and of createServiceProxy(). */
export type Style = 'text' | 'launcher' | 'proxy';

function literal(text: string, style: Style): string {
  if (style === 'text') return text;
  return style === 'proxy' ? `\`'${text}'\`` : `\`${text}\``;
}

function listOf(items: string[]): string {
  return items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}

/** What a setting does, with the values it may take: 'how connections reach the workers: auto, handoff or pipe'. */
export function meaning(entry: Setting<unknown>, style: Style): string {
  const help = style === 'text' ? entry.help.replaceAll('`', '') : entry.help;
  const choices = entry.check.choices?.map((choice) => literal(choice, style));
  return choices ? `${help}: ${listOf(choices)}` : help;
}

export function describeDefault(entry: Setting<unknown>, style: Style): string {
  const { default: value, defaultText } = entry;
  if (entry.required) return 'required';
  if (value === undefined) return defaultText ?? '';
  if (typeof value === 'boolean') return style === 'proxy' ? String(value) : value ? 'on' : 'off';
  const shown = entry.check.toText
    ? literal(entry.check.toText(value), style)
    : typeof value === 'string'
      ? literal(value, style)
      : String(value);
  if (!defaultText) return shown;
  return style === 'text' ? `${shown}, ${defaultText}` : `${shown} (${defaultText})`;
}

export function flagLabel(entry: { flag: string; short?: string; placeholder?: string }): string {
  return `${entry.short ? `-${entry.short}, ` : ''}--${entry.flag}${entry.placeholder ? ` ${entry.placeholder}` : ''}`;
}

/** A boolean setting is switched on by its environment variable set to 1. */
export function envLabel(entry: Setting<unknown>): string {
  return entry.check === boolean ? `${entry.env}=1` : entry.env!;
}

const WIDTH = 100;

function wrap(text: string, width: number): string[] {
  const lines = [''];
  for (const word of text.split(' ')) {
    const line = lines.at(-1)!;
    if (line !== '' && line.length + 1 + word.length > width) lines.push(word);
    else lines[lines.length - 1] = line === '' ? word : `${line} ${word}`;
  }
  return lines;
}

function optionLines(): string[] {
  const described = [
    ...flaggedSettings().map((entry) => {
      const env = entry.env ? ` [${envLabel(entry)}]` : '';
      const byDefault = describeDefault(entry, 'text');
      return { entry, text: `${meaning(entry, 'text')}${env}${byDefault ? ` (default: ${byDefault})` : ''}` };
    }),
    ...commandFlags.map((entry) => ({ entry, text: entry.help })),
  ].map(({ entry, text }) => ({ label: `${entry.short ? '' : '    '}${flagLabel(entry)}`, text }));
  const column = Math.max(...described.map(({ label }) => label.length)) + 4;
  return described.flatMap(({ label, text }) =>
    wrap(text, WIDTH - column).map((line, i) => (i === 0 ? `  ${label}`.padEnd(column) : ' '.repeat(column)) + line),
  );
}

export function usage(): string {
  return [
    'Usage: socketnaut [options] <app-module>',
    '',
    'Runs <app-module> on every worker thread behind one public port. The app listens as usual',
    '(app.listen(3000), fastify.listen(), server.listen(PORT)); the launcher owns the port.',
    '',
    'Options (environment variable in brackets):',
    ...optionLines(),
    '',
    'Signals: SIGINT and SIGTERM stop accepting and let in-flight requests finish, then exit 0.',
    'SIGHUP replaces the workers one at a time, with no failed request.',
    '',
    'In development: socketnaut app.js --watch --workers 2 --env-file .env',
  ].join('\n');
}
