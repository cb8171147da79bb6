// What the example-apps tests share: the command each README gives, and running an app alone.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { freePort, waitFor } from './helpers.ts';

export { freePort };

export const root = fileURLToPath(new URL('..', import.meta.url));

export function examplePath(relative: string): string {
  return path.join(root, 'example-apps', relative);
}

/**
 * The arguments of the one command in an example's README, after `prefix` (`npm run socketnaut --`,
 * `npx node`); paths in the repository are made absolute, since the README runs from its root.
 */
export function readmeCommand(example: string, prefix: string): string[] {
  const readme = fs.readFileSync(examplePath(`${example}/README.md`), 'utf8');
  const lines = readme.split('\n').filter((line) => line.startsWith(`${prefix} `));
  if (lines.length !== 1)
    throw new Error(`${example}/README.md has ${lines.length} lines starting with '${prefix}', not 1`);
  return lines[0]!
    .slice(prefix.length + 1)
    .split(' ')
    .map((arg) => (arg.startsWith('example-apps/') ? path.join(root, arg) : arg));
}

export interface Alone {
  child: ChildProcess;
  port: number;
  stderr: () => string;
}

/** Runs an example app with `node app.js` on a port of its own; killed in teardown. */
export async function runAlone(t: Test, file: string): Promise<Alone> {
  const port = await freePort();
  const child = spawn(process.execPath, [file], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = once(child, 'exit');
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, port, stderr: () => stderr };
}

/**
 * Tries `attempt` until it resolves, and resolves with what it did: the apps print nothing once they
 * listen. Rejects at once if the app exits, and with the last attempt's error after `timeout` ms.
 */
export async function untilAnswered<T>(alone: Alone, attempt: () => Promise<T>, timeout = 10_000): Promise<T> {
  let last: unknown;
  const answer = await waitFor(
    () =>
      attempt().then(
        (value) => ({ value }),
        (err: unknown) => {
          last = err;
          return undefined;
        },
      ),
    {
      timeout,
      interval: 50,
      what: () => `an answer from the app (last attempt: ${last instanceof Error ? last.message : String(last)})`,
      failure: () =>
        alone.child.exitCode === null ? undefined : `the app exited with ${alone.child.exitCode}:\n${alone.stderr()}`,
    },
  );
  return answer.value;
}
