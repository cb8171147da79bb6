// --env-file: variables read from files into the launcher's environment, which every worker inherits.
import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';
import { ERR_ENV_FILE } from '../errors.ts';

/** The variables of `files`, a later file's winning over an earlier one's, as with `node --env-file`. */
export function readEnvFiles(files: readonly string[]): Record<string, string> {
  const variables: Record<string, string> = {};
  for (const file of files) {
    const resolved = path.resolve(file);
    let text: string;
    try {
      text = fs.readFileSync(resolved, 'utf8');
    } catch (err) {
      const { code, message } = err as NodeJS.ErrnoException;
      throw new ERR_ENV_FILE(resolved, code === 'ENOENT' ? 'no such file' : message);
    }
    Object.assign(variables, util.parseEnv(text));
  }
  return variables;
}

/** Sets the variables of `files` in `env`, except those `env` already has. */
export function loadEnvFiles(files: readonly string[], env: NodeJS.ProcessEnv = process.env): void {
  for (const [name, value] of Object.entries(readEnvFiles(files))) {
    if (env[name] === undefined) env[name] = value;
  }
}
