import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import t, { type Test } from 'tap';
import { request } from '../helpers.ts';
import { examplePath, readmeCommand } from '../examples.ts';

const exampleCertificate = Buffer.from(new crypto.X509Certificate(fs.readFileSync(examplePath('certs/cert.pem'))).raw);

interface Process {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

interface Running extends Process {
  httpPort: number;
  httpsPort: number;
}

/** Runs the README's command; killed in teardown if still running. */
function run(t: Test, env: NodeJS.ProcessEnv): Process {
  const command = readmeCommand('https-redirect', 'npx node');
  t.same(command, [examplePath('https-redirect/index.js')], "the README's command");
  const child = spawn(process.execPath, command, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Starts the example on ports of its choosing and reads them from its start-up line. */
async function start(t: Test): Promise<Running> {
  const running = run(t, { HTTP_PORT: '0', HTTPS_PORT: '0', HOST: '127.0.0.1' });
  const line = await new Promise<RegExpExecArray>((resolve, reject) => {
    const onData = (): void => {
      const match = /^https-redirect: http:\/\/127\.0\.0\.1:(\d+) -> https:\/\/127\.0\.0\.1:(\d+)$/m.exec(
        running.stdout(),
      );
      if (match) resolve(match);
    };
    running.child.stdout!.on('data', onData);
    void running.exited.then(({ code }) =>
      reject(new Error(`exited with ${code} before starting:\n${running.stderr()}`)),
    );
  });
  return { ...running, httpPort: Number(line[1]), httpsPort: Number(line[2]) };
}

function httpsGet(
  port: number,
  path: string,
  localAddress: string,
): Promise<{ status: number; body: string; certificate: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host: '127.0.0.1', port, path, localAddress, rejectUnauthorized: false, agent: false },
      (res) => {
        const certificate = (res.socket as TLSSocket).getPeerCertificate().raw;
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, certificate }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
  });
}

t.test('HTTP redirects to HTTPS, which answers over TLS, until SIGTERM', async (t) => {
  const app = await start(t);
  t.equal(app.stdout().trim().split('\n').length, 1, 'one start-up line');
  t.not(app.httpPort, app.httpsPort);

  const redirect = await request(app.httpPort, { path: '/some/path?x=1' });
  t.equal(redirect.status, 301);
  t.equal(redirect.headers.location, `https://127.0.0.1:${app.httpsPort}/some/path?x=1`);

  const named = await request(app.httpPort, { path: '/', headers: { host: `localhost:${app.httpPort}` } });
  t.equal(
    named.headers.location,
    `https://localhost:${app.httpsPort}/`,
    'the redirect keeps the host the client asked for',
  );

  const page = await httpsGet(app.httpsPort, '/some/path?x=1', '127.0.0.9');
  t.equal(page.status, 200);
  t.ok(page.certificate.equals(exampleCertificate), "TLS with the example's certificate");
  t.equal(page.body, 'Hello over HTTPS, 127.0.0.9\n', "the worker knows the client's address");

  app.child.kill('SIGTERM');
  t.same(await app.exited, { code: 0, signal: null }, 'a clean exit');
});

t.test('a bad port is refused with a clear error and a non-zero exit', async (t) => {
  const app = run(t, { HTTP_PORT: '0', HTTPS_PORT: 'not-a-port', HOST: '127.0.0.1' });
  const { code } = await app.exited;
  t.equal(code, 1);
  t.match(app.stderr(), /ERR_SOCKET_BAD_PORT/);
  t.equal(app.stdout(), '', 'nothing claims to be serving');
});
