// The documentation's tables of settings, rendered from the settings table; test/main/settings-table.test.ts
// fails when those in README.md and docs/Reference differ.
import type { SettingName } from '../settings.ts';
import { settingsOf } from './resolve.ts';
import { commandFlags, describeDefault, envLabel, flagLabel, meaning } from './command-line.ts';

/** The launcher's options the README shows; docs/Reference/Launcher.md has them all. */
export const mainLauncherSettings: readonly SettingName[] = [
  'port',
  'host',
  'workers',
  'transport',
  'balance',
  'trustProxy',
  'tlsKey',
  'tlsCert',
  'metrics',
  'health',
  'watch',
];

function row(cells: string[]): string {
  return `|${cells.map((cell) => (cell ? ` ${cell} ` : ' ')).join('|')}|`;
}

function launcherRows(only?: readonly SettingName[]): string[] {
  return settingsOf('launcher').flatMap(([name, entry]) =>
    entry.flag === undefined || (only && !only.includes(name))
      ? []
      : [
          row([
            `\`${flagLabel({ ...entry, flag: entry.flag })}\``,
            entry.env ? `\`${envLabel(entry)}\`` : '',
            describeDefault(entry, 'launcher'),
            meaning(entry, 'launcher'),
          ]),
        ],
  );
}

const launcherHeader = [row(['option', 'environment', 'default', 'meaning']), '|---|---|---|---|'];

/** docs/Reference/Launcher.md, under "## Options": every flag, option | environment | default | meaning. */
export function launcherTable(): string {
  const commands = commandFlags.map((command) => `\`${flagLabel(command)}\``).join(', ');
  return [...launcherHeader, ...launcherRows(), row([commands, '', '', ''])].join('\n');
}

/** README.md, under "## The launcher": the same rows, for the main settings only. */
export function mainLauncherTable(): string {
  return [...launcherHeader, ...launcherRows(mainLauncherSettings)].join('\n');
}

/** docs/Reference/API.md, under "## `createServiceProxy(options)` → `ServiceProxy`": option | default | what it does. */
export function proxyTable(): string {
  const rows = settingsOf('proxy').map(([name, entry]) =>
    row([`\`${name}\``, describeDefault(entry, 'proxy'), meaning(entry, 'proxy')]),
  );
  return [row(['option', 'default', '']), '|---|---|---|', ...rows].join('\n');
}
