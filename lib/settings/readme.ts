// The README's tables of settings, rendered from the settings table; test/main/settings-table.test.ts
// fails when README.md's differ.
import { settingsOf } from '../settings.ts';
import { commandFlags, describeDefault, envLabel, flagLabel, meaning } from './command-line.ts';

function row(cells: string[]): string {
  return `|${cells.map((cell) => (cell ? ` ${cell} ` : ' ')).join('|')}|`;
}

/** The table under "## The launcher": option | environment | default | meaning. */
export function launcherTable(): string {
  const rows = settingsOf('launcher').flatMap(([, entry]) =>
    entry.flag === undefined
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
  const commands = commandFlags.map((command) => `\`${flagLabel(command)}\``).join(', ');
  return [
    row(['option', 'environment', 'default', 'meaning']),
    '|---|---|---|---|',
    ...rows,
    row([commands, '', '', '']),
  ].join('\n');
}

/** The table under "### `createServiceProxy(options)`": option | default | what it does. */
export function proxyTable(): string {
  const rows = settingsOf('proxy').map(([name, entry]) =>
    row([`\`${name}\``, describeDefault(entry, 'proxy'), meaning(entry, 'proxy')]),
  );
  return [row(['option', 'default', '']), '|---|---|---|', ...rows].join('\n');
}
