// --env-file: variables read from files into the launcher's environment, which every worker inherits.
import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';
import { ERR_ENV_FILE } from '../errors.ts';

/** The variables of `files`, a later file's winning over an earlier one's, as with `node --env-file`. */
export function readEnvFiles(files: readonly string[]): Record<string, string> {
  // util.parseEnv came with Node 20.12, after the oldest Node this package runs on.
  const parseEnv = util.parseEnv as typeof util.parseEnv | undefined;
  const variables: Record<string, string> = {};
  for (const file of files) {
    const resolved = path.resolve(file);
    if (!parseEnv)
      throw new ERR_ENV_FILE(
        resolved,
        `reading env files needs Node 20.12 or later (util.parseEnv); this is ${process.version}`,
      );
    let text: string;
    try {
      text = fs.readFileSync(resolved, 'utf8');
    } catch (err) {
      const { code, message } = err as NodeJS.ErrnoException;
      throw new ERR_ENV_FILE(resolved, code === 'ENOENT' ? 'no such file' : message);
    }
    Object.assign(variables, parseEnv(text));
  }
  return variables;
}

/** Sets the variables of `files` in `env`, except those `env` already has. */
export function loadEnvFiles(files: readonly string[], env: NodeJS.ProcessEnv = process.env): void {
  for (const [name, value] of Object.entries(readEnvFiles(files))) {
    if (env[name] === undefined) env[name] = value;
  }
}
