import crypto from 'node:crypto';
import { once } from 'node:events';
import tls from 'node:tls';
import t from 'tap';
import { fixture, startProxy, transports } from '../helpers.ts';

interface Visit {
  threadId: number;
  reused: boolean;
  session: Buffer | undefined;
  body: Record<string, unknown>;
}

/** One request over a new TLS connection, offering `session` to resume; returns the session the server then issued. */
async function visit(port: number, session?: Buffer): Promise<Visit> {
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, session });
  let issued: Buffer | undefined;
  socket.on('session', (ticket: Buffer) => (issued = ticket));
  await once(socket, 'secureConnect');
  const reused = socket.isSessionReused();
  socket.end('GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  await once(socket, 'close');
  const text = Buffer.concat(chunks).toString();
  const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
  return { threadId: body.threadId as number, reused, session: issued, body };
}

for (const transport of transports) {
  t.test(`${transport}: a TLS session resumes on a worker other than the one that issued it`, async (t) => {
    const { port } = await startProxy(t, {
      workerURL: fixture('https-server.js'),
      workerCount: 2,
      transport,
      balance: 'round-robin',
    });
    let session = (await visit(port)).session;
    t.ok(session, 'the server issued a session ticket');
    const visits: Visit[] = [];
    for (let i = 0; i < 6; i++) {
      const next = await visit(port, session);
      visits.push(next);
      session = next.session ?? session;
    }
    t.equal(new Set(visits.map((v) => v.threadId)).size, 2, 'the connections went to both workers');
    t.same(
      visits.map((v) => v.reused),
      visits.map(() => true),
      'every connection resumed its session, whichever worker issued the ticket',
    );
  });
}

t.test('sessions still resume on any worker after a server replaces its secure context', async (t) => {
  const { port } = await startProxy(t, {
    workerURL: fixture('https-new-context.js'),
    workerCount: 2,
    balance: 'round-robin',
  });
  const first = await visit(port);
  const second = await visit(port, first.session);
  t.not(first.threadId, second.threadId, 'the second connection went to the other worker');
  t.ok(second.reused, 'and resumed the session the first worker issued');
});

t.test('a TLS server whose author set ticketKeys keeps them', async (t) => {
  const ticketKeys = crypto.randomBytes(48).toString('hex');
  const { port } = await startProxy(t, {
    workerURL: fixture('https-own-ticket-keys.js'),
    workerCount: 2,
    balance: 'round-robin',
    workerOptions: { workerData: { ticketKeys } },
  });
  const first = await visit(port);
  const second = await visit(port, first.session);
  t.not(first.threadId, second.threadId, 'both workers answered');
  t.equal(first.body.ticketKeys, ticketKeys, "the first worker's server has its author's keys");
  t.equal(second.body.ticketKeys, ticketKeys, "and so has the second's");
});
