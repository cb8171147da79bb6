import net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { fixture, startProxy, transports, type StartedProxy } from '../helpers.ts';

const DEADLINE_MS = 500;
const PROMPT_MS = 100;
const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const REQUEST = 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';

function v2(
  source: string,
  sourcePort: number,
  { versionCommand = 0x21, signature = SIGNATURE, declared = 12 } = {},
): Buffer {
  const header = Buffer.alloc(28);
  signature.copy(header);
  header[12] = versionCommand;
  header[13] = 0x11;
  header.writeUInt16BE(declared, 14);
  source.split('.').forEach((octet, i) => (header[16 + i] = Number(octet)));
  [127, 0, 0, 1].forEach((octet, i) => (header[20 + i] = octet));
  header.writeUInt16BE(sourcePort, 24);
  header.writeUInt16BE(80, 26);
  return header;
}

const v1 = (source: string, sourcePort: number): string => `PROXY TCP4 ${source} 127.0.0.1 ${sourcePort} 80\r\n`;

interface Outcome {
  /** From the last byte sent (or the FIN) to the close, in ms. */
  closedAfterMs: number;
  received: Buffer;
}

/** Sends `data` (and a FIN, if asked), then waits for the proxy to close the connection. */
function send(port: number, data: string | Buffer, { fin = false, localAddress = '127.0.0.1' } = {}): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    const chunks: Buffer[] = [];
    let sentAt = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`still open ${DEADLINE_MS * 4} ms after sending ${JSON.stringify(data.toString('latin1'))}`));
    }, DEADLINE_MS * 4);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A reset is one of the ways to be closed.
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ closedAfterMs: performance.now() - sentAt, received: Buffer.concat(chunks) });
    });
    socket.on('connect', () => {
      sentAt = performance.now();
      socket.write(data);
      if (fin) socket.end();
    });
  });
}

/** Sends `data` a byte every `everyMs`, from the moment it connects, until the proxy closes. */
function sendSlowly(port: number, data: Buffer, everyMs: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let connectedAt = 0;
    let ticker: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`a slow header still open after ${DEADLINE_MS * 4} ms`));
    }, DEADLINE_MS * 4);
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(ticker);
      clearTimeout(timer);
      resolve({ closedAfterMs: performance.now() - connectedAt, received: Buffer.alloc(0) });
    });
    socket.on('connect', () => {
      connectedAt = performance.now();
      let sent = 0;
      if (everyMs > 0)
        ticker = setInterval(() => sent < data.length && socket.write(data.subarray(sent, ++sent)), everyMs);
    });
  });
}

function parseResponse(received: Buffer): { status: number; body: unknown } {
  const text = received.toString('latin1');
  const split = text.indexOf('\r\n\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  return { status, body: split === -1 ? undefined : JSON.parse(text.slice(split + 4)) };
}

interface Count {
  connections: number;
  requests: number;
  remote: { address: string; port: number };
}

async function rejected(proxy: StartedProxy['proxy']): Promise<number> {
  return (await proxy.stats()).proxyHeaderRejected;
}

/** The count once it reaches `expected` (a worker reports its rejections a moment later), or after 3 s. */
async function rejectedReaching(proxy: StartedProxy['proxy'], expected: number): Promise<number> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const count = await rejected(proxy);
    if (count >= expected || Date.now() > deadline) return count;
    await delay(10);
  }
}

/**
 * Sends a bad header and checks that the connection is closed within PROMPT_MS with nothing sent
 * back. Returns the connections made: this machine is shared, and a descheduled thread can miss the
 * bound once, where a connection left to its deadline misses it every time.
 */
async function closesPromptly(
  t: Test,
  port: number,
  name: string,
  data: string | Buffer,
  options: { fin?: boolean; localAddress?: string } = {},
): Promise<number> {
  let best = Infinity;
  let tries = 0;
  while (tries < 3 && best > PROMPT_MS) {
    tries++;
    const outcome = await send(port, data, options);
    t.equal(outcome.received.length, 0, `${name}: nothing came back`);
    best = Math.min(best, outcome.closedAfterMs);
  }
  t.ok(best <= PROMPT_MS, `${name}: closed ${best.toFixed(1)} ms after the last byte`);
  return tries;
}

interface BadCase {
  name: string;
  data: string | Buffer;
  fin?: boolean;
}

const badCases: BadCase[] = [
  { name: 'no header at all', data: REQUEST },
  { name: 'no CRLF within 107 bytes', data: `PROXY TCP4 ${'1'.repeat(120)}` },
  { name: 'a lone LF', data: `PROXY TCP4 192.0.2.1 127.0.0.1 5000 80\n${REQUEST}` },
  { name: 'a wrong v2 signature', data: v2('192.0.2.1', 5000, { signature: Buffer.from(SIGNATURE).fill(0x52, 7, 8) }) },
  { name: 'a wrong v2 version', data: v2('192.0.2.1', 5000, { versionCommand: 0x11 }) },
  { name: 'a v2 length beyond the data, then FIN', data: v2('192.0.2.1', 5000, { declared: 100 }), fin: true },
  { name: 'a truncated v1 header, then FIN', data: 'PROXY TCP4 192.0.2.1 127.0', fin: true },
  { name: 'a truncated v2 header, then FIN', data: v2('192.0.2.1', 5000).subarray(0, 10), fin: true },
];

for (const transport of transports) {
  t.test(`${transport}: bad PROXY headers are closed at once, unseen by the app, and counted`, async (t) => {
    const started = await startProxy(t, {
      workerURL: fixture('proxy-protocol-counter.js'),
      workerCount: 1,
      transport,
      proxyProtocol: true,
      proxyProtocolTimeout: DEADLINE_MS,
    });
    const { proxy, port } = started;
    t.equal(proxy.transport, transport);

    let attempts = 0;
    for (const { name, data, fin } of badCases) attempts += await closesPromptly(t, port, name, data, { fin });

    const silent = await sendSlowly(port, Buffer.alloc(0), 0);
    t.ok(
      silent.closedAfterMs >= DEADLINE_MS - 10 && silent.closedAfterMs < DEADLINE_MS + 400,
      `silent: closed after ${silent.closedAfterMs.toFixed(0)} ms`,
    );
    const slow = await sendSlowly(port, Buffer.from(v1('192.0.2.1', 5000)), 40);
    t.ok(
      slow.closedAfterMs >= DEADLINE_MS - 10 && slow.closedAfterMs < DEADLINE_MS + 400,
      `slow: closed after ${slow.closedAfterMs.toFixed(0)} ms`,
    );
    attempts += 2;

    const expected = attempts;
    t.equal(await rejectedReaching(proxy, expected), expected, 'proxyHeaderRejected counts each of them');

    const good = parseResponse((await send(port, `${v1('198.51.100.7', 4242)}${REQUEST}`)).received);
    t.equal(good.status, 200);
    t.match(
      good.body as Count,
      { connections: 1, requests: 1, remote: { address: '198.51.100.7', port: 4242 } },
      'the app saw none of them',
    );

    // A second header after a valid one is the client's data: here, not HTTP.
    const second = `${v1('203.0.113.66', 6666)}${REQUEST}`;
    const twice = parseResponse((await send(port, `${v1('198.51.100.8', 4343)}${second}`)).received);
    t.equal(twice.status, 400);
    t.match(twice.body, { code: 'HPE_INVALID_METHOD' });
    t.equal(
      (twice.body as { raw: string }).raw.slice(0, second.length),
      second,
      'the app got the second header verbatim',
    );

    const v2good = parseResponse(
      (await send(port, Buffer.concat([v2('198.51.100.9', 4444), Buffer.from(REQUEST)]))).received,
    );
    t.match(v2good.body as Count, { connections: 3, requests: 2, remote: { address: '198.51.100.9', port: 4444 } });
    t.equal(await rejected(proxy), expected, 'valid headers are not counted');
  });

  t.test(`${transport}: a header from a peer outside proxyProtocolFrom is refused`, async (t) => {
    const { proxy, port } = await startProxy(t, {
      workerURL: fixture('proxy-protocol-counter.js'),
      workerCount: 1,
      transport,
      proxyProtocol: true,
      proxyProtocolFrom: ['127.0.0.2'],
      proxyProtocolTimeout: DEADLINE_MS,
    });
    const request = `${v1('198.51.100.7', 4242)}${REQUEST}`;
    const attempts = await closesPromptly(t, port, 'from 127.0.0.3', request, { localAddress: '127.0.0.3' });
    t.equal(await rejectedReaching(proxy, attempts), attempts);

    const trusted = parseResponse((await send(port, request, { localAddress: '127.0.0.2' })).received);
    t.equal(trusted.status, 200);
    t.match(trusted.body as Count, { connections: 1, requests: 1, remote: { address: '198.51.100.7', port: 4242 } });
    t.equal(await rejected(proxy), attempts);
  });
}
