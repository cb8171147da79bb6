import crypto from 'node:crypto';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import t from 'tap';
import { fixture, request, startProxy, tlsFiles, transports } from '../helpers.ts';

interface Info {
  threadId: number;
  encrypted: boolean;
  remote?: { address: string; port: number };
}

interface HttpsReply {
  status: number;
  body: string;
  authorized: boolean;
  certificate: Buffer;
  localPort: number;
}

function httpsGet(port: number, options: https.RequestOptions = {}): Promise<HttpsReply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path: '/', agent: false, rejectUnauthorized: false, ...options },
      (res) => {
        const socket = res.socket as TLSSocket;
        const certificate = socket.getPeerCertificate().raw;
        const localPort = socket.localPort ?? 0;
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString(),
            authorized: socket.authorized,
            certificate,
            localPort,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

// The certificate the client sees must be the worker's: TLS ends in the worker, not at the proxy.
const workerCertificate = Buffer.from(new crypto.X509Certificate(tlsFiles.cert).raw);

for (const transport of transports) {
  t.test(`${transport}: an https.Server in the worker terminates TLS`, async (t) => {
    const { proxy, port } = await startProxy(t, { workerURL: fixture('https-server.js'), workerCount: 1, transport });
    t.equal(proxy.transport, transport);

    const reply = await httpsGet(port, { localAddress: '127.0.0.9' });
    t.equal(reply.status, 200);
    t.ok(reply.certificate.equals(workerCertificate), "the client saw the worker's certificate");
    const info = JSON.parse(reply.body) as Info;
    t.equal(info.encrypted, true, 'the request arrived over TLS');
    t.equal(info.remote?.address, '127.0.0.9', "the handler saw the client's bound address");
    t.equal(info.remote?.port, reply.localPort, "the handler saw the client's port");
    t.not(info.threadId, 0, 'served by a worker thread');
  });

  t.test(`${transport}: several clients, each seen with its own address`, async (t) => {
    const { port } = await startProxy(t, { workerURL: fixture('https-server.js'), workerCount: 2, transport });
    const addresses = Array.from({ length: 6 }, (_, i) => `127.0.0.${20 + i}`);
    const replies = await Promise.all(addresses.map((localAddress) => httpsGet(port, { localAddress })));
    for (const [i, reply] of replies.entries()) {
      const info = JSON.parse(reply.body) as Info;
      t.equal(info.encrypted, true);
      t.equal(info.remote?.address, addresses[i]);
    }
  });

  t.test(`${transport}: a plain-text request is refused and the worker keeps serving`, async (t) => {
    const { port } = await startProxy(t, { workerURL: fixture('https-server.js'), workerCount: 1, transport });
    const failure = await request(port, { localAddress: '127.0.0.9' }).then(
      (reply) => ({ code: `HTTP ${reply.status}` }),
      (err: NodeJS.ErrnoException) => ({ code: err.code }),
    );
    t.match(failure.code, /^(ECONNRESET|EPIPE)$/, 'the worker closes a connection that does not speak TLS');
    const info = JSON.parse((await httpsGet(port, { localAddress: '127.0.0.10' })).body) as Info;
    t.equal(info.remote?.address, '127.0.0.10');
  });
}
