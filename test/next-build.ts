// Builds the Next.js app of test/fixtures/next-standalone with `output: 'standalone'`, as its users
// deploy it, once for its current sources: a build stamped with the hash of its sources and of the
// Next.js and React versions is used again. The build output is never committed (.gitignore).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const appDir = new URL('./fixtures/next-standalone/', import.meta.url).pathname;
const distDir = path.join(appDir, '.next');
const stampFile = path.join(distDir, 'socketnaut-sources.sha256');
const BUILD_TIMEOUT_MS = 300_000;

export interface NextBuild {
  /** The generated server, to be run as `node server.js`. */
  serverJs: string;
  /** How long the build took, in ms; 0 when an earlier build was used. */
  buildMs: number;
}

/** The sources of the app, and the versions of what builds it. */
function sourcesHash(): string {
  const hash = createHash('sha256');
  const files = fs
    .readdirSync(appDir, { recursive: true, encoding: 'utf8' })
    .filter((file) => !file.startsWith('.next') && fs.statSync(path.join(appDir, file)).isFile())
    .sort();
  for (const file of files) hash.update(`${file}\0`).update(fs.readFileSync(path.join(appDir, file)));
  for (const name of ['next', 'react', 'react-dom'])
    hash.update(`${name}@${(require(`${name}/package.json`) as { version: string }).version}\0`);
  return hash.digest('hex');
}

/** Where Next puts server.js: the app's path under the tracing root (the repository), within standalone/. */
function serverJsPath(): string {
  const root = path.resolve(appDir, '../../..');
  return path.join(distDir, 'standalone', path.relative(root, appDir), 'server.js');
}

/** The built server.js of the app, building it first unless the last build was of these sources. */
export async function buildNextStandalone(): Promise<NextBuild> {
  const hash = sourcesHash();
  const serverJs = serverJsPath();
  if (fs.existsSync(serverJs) && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === hash) {
    return { serverJs, buildMs: 0 };
  }
  const started = performance.now();
  const next = require.resolve('next/dist/bin/next');
  await new Promise<void>((resolve, reject) => {
    execFile(
      process.execPath,
      [next, 'build', appDir],
      // No network here: no telemetry, and the app loads no fonts or anything else from outside.
      { env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' }, timeout: BUILD_TIMEOUT_MS, maxBuffer: 16 << 20 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`next build failed: ${err.message}\n${stdout}${stderr}`)) : resolve(),
    );
  });
  // As Next's deployment guide says: the standalone server serves the static files once copied beside it.
  fs.cpSync(path.join(distDir, 'static'), path.join(path.dirname(serverJs), '.next', 'static'), { recursive: true });
  fs.writeFileSync(stampFile, hash);
  return { serverJs, buildMs: performance.now() - started };
}
