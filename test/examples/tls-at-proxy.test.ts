import fs from 'node:fs';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import t from 'tap';
import { request } from '../helpers.ts';
import { startLauncher } from '../launcher.ts';
import { examplePath, readmeCommand } from '../examples.ts';

const ca = fs.readFileSync(examplePath('certs/cert.pem'));

function httpsGet(port: number, localAddress: string): Promise<{ status: number; body: string; authorized: boolean }> {
  return new Promise((resolve, reject) => {
    // Verified against the example's certificate, which must name 127.0.0.1.
    const req = https.get({ host: '127.0.0.1', port, localAddress, ca, agent: false }, (res) => {
      const authorized = (res.socket as TLSSocket).authorized;
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, authorized }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

t.test("the README's command ends TLS at the launcher; the app sees plain HTTP and the client", async (t) => {
  const args = readmeCommand('tls-at-proxy', 'npm run socketnaut --');
  t.same(args, [
    examplePath('tls-at-proxy/app.js'),
    '--tls-key',
    examplePath('certs/key.pem'),
    '--tls-cert',
    examplePath('certs/cert.pem'),
  ]);
  const launcher = await startLauncher(t, args);
  t.match(launcher.url, /^https:\/\//);
  t.match(launcher.stdout(), /transport pipe/);

  const reply = await httpsGet(launcher.port, '127.0.0.9');
  t.equal(reply.status, 200);
  t.ok(reply.authorized, 'the certificate is valid for 127.0.0.1');
  t.same(JSON.parse(reply.body), { encrypted: false, clientAddress: '127.0.0.9' });

  await t.rejects(request(launcher.port, { localAddress: '127.0.0.10' }), 'plain HTTP is not served');
});
