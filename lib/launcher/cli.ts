#!/usr/bin/env node
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  ERR_ENV_FILE,
  ERR_INVALID_OPTION,
  ERR_OPTION_OUT_OF_RANGE,
  ERR_RELOAD_INTERRUPTED,
  ERR_USAGE,
} from '../errors.ts';
import { commandLineOptions, readCommandLine, usage } from '../settings/command-line.ts';
import { loadEnvFiles } from './env-file.ts';
import { launch, type LaunchOptions, type Launched } from './launch.ts';

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

export function parseCommandLine(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): LaunchOptions | 'help' | 'version' {
  let parsed: ReturnType<
    typeof parseArgs<{ args: string[]; options: typeof commandLineOptions; allowPositionals: true; strict: true }>
  >;
  try {
    parsed = parseArgs({ args: argv, options: commandLineOptions, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ERR_USAGE((err as Error).message);
  }
  if (parsed.values.help) return 'help';
  if (parsed.values.version) return 'version';
  if (parsed.positionals.length !== 1) throw new ERR_USAGE('Expected exactly one <app-module>');
  // As with `node --env-file`, the files' variables count as the environment for every setting.
  const { envFile } = readCommandLine(parsed.values, env, ['envFile']) as Pick<LaunchOptions, 'envFile'>;
  if (envFile) loadEnvFiles(envFile, env);
  // Each value has passed its setting's check; launch() checks them again, as it does any caller's.
  const options = { app: parsed.positionals[0]!, ...readCommandLine(parsed.values, env) } as LaunchOptions;
  if ((options.tlsKey === undefined) !== (options.tlsCert === undefined))
    throw new ERR_USAGE('--tls-key and --tls-cert go together');
  return options;
}

function exitWithUsage(message: string): never {
  console.error(`socketnaut: ${message}\n\n${usage()}`);
  process.exit(EXIT_USAGE);
}

function version(): string {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

// Installed before start-up, so that a signal that comes early still ends the process cleanly.
function handleSignals(): (launched: Launched) => void {
  let launched: Launched | undefined;
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      console.error(`socketnaut: ${signal} again; exiting without waiting`);
      process.exit(EXIT_FAILURE);
    }
    stopping = true;
    if (!launched) process.exit(0);
    console.error(`socketnaut: ${signal}; finishing in-flight requests`);
    launched.close(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`socketnaut: shutdown failed: ${(err as Error).message}`);
        process.exit(EXIT_FAILURE);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', () => {
    if (!launched || stopping) return;
    console.error('socketnaut: SIGHUP; reloading workers');
    launched.reload().then(
      () => console.error('socketnaut: reload complete'),
      (err: unknown) => {
        if (err instanceof ERR_RELOAD_INTERRUPTED) console.error('socketnaut: reload cut short by the shutdown');
        else console.error(`socketnaut: reload stopped, old workers keep serving: ${(err as Error).message}`);
      },
    );
  });
  return (started) => {
    launched = started;
  };
}

export async function main(argv: string[]): Promise<void> {
  let options: ReturnType<typeof parseCommandLine>;
  try {
    options = parseCommandLine(argv);
  } catch (err) {
    if (!(err instanceof ERR_USAGE || err instanceof ERR_ENV_FILE)) throw err;
    exitWithUsage(err.message);
  }
  if (options === 'help') return console.log(usage());
  if (options === 'version') return console.log(version());

  const started = handleSignals();
  let launched: Launched;
  try {
    launched = await launch(options);
  } catch (err) {
    // Options that launch() or the proxy refuse together, such as --max-workers below --min-workers.
    if (err instanceof ERR_INVALID_OPTION || err instanceof ERR_OPTION_OUT_OF_RANGE) exitWithUsage(err.message);
    const cause = (err as Error).cause as Error | undefined;
    console.error(`socketnaut: ${(err as Error).message}${cause?.stack ? `\n${cause.stack}` : ''}`);
    process.exit(EXIT_FAILURE);
  }
  started(launched);
  const workers = launched.proxy.agents.length;
  const metrics = launched.metrics ? ` · metrics ${launched.metrics.url}` : '';
  const health = launched.health ? ` · health ${launched.health.url}` : '';
  const watching = launched.watching
    ? ` · watching ${launched.watching.map((dir) => path.relative(process.cwd(), dir) || '.').join(', ')}`
    : '';
  console.log(
    `socketnaut: ${launched.url} · ${workers} worker${workers === 1 ? '' : 's'} · transport ${launched.proxy.transport}${metrics}${health}${watching}`,
  );
}

await main(process.argv.slice(2));
