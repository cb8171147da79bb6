// A load process of the realtime benchmark, forked by realtime.ts with an IPC channel. Its clients speak
// Engine.IO v4 / Socket.IO v5 frames over `ws` directly (no socket.io-client), so that the server is
// the limit: a handshake over HTTP long-polling, the upgrade to WebSocket ("2probe", "3probe", "5"),
// then Socket.IO's CONNECT ("40") and events ("42[...]"), answering the server's pings ("2") with "3".
import http from 'node:http';
import WebSocket from 'ws';

export type Command =
  | { cmd: 'sessions'; port: number; concurrency: number; ms: number }
  | { cmd: 'connect'; port: number; clients: number }
  | { cmd: 'track' }
  | { cmd: 'emit'; seq: number }
  | { cmd: 'emitAtRate'; firstSeq: number; rate: number; ms: number }
  | { cmd: 'usage' }
  | { cmd: 'latencies' }
  | { cmd: 'disconnect' };

export interface SessionsResult {
  sessions: number;
  errors: number;
  firstError: string | undefined;
  cpuUs: number;
}
export interface ConnectResult {
  /** Clients by the process and thread ("pid.threadId") that serve them. */
  byWorker: Record<string, number>;
  /** Sessions that failed to set up, and were set up again as Socket.IO's client would. */
  errors: number;
  firstError: string | undefined;
}
/** Since `track`: deliveries to this process's clients, and its CPU time. */
export interface Usage {
  delivered: number;
  cpuUs: number;
}
export interface LatenciesResult extends Usage {
  /** Delivery latency of each broadcast received since `track`, in ms. */
  latencies: Float64Array;
}
/** Sent unasked: every client of this process has received broadcast `seq`. */
export interface Delivered {
  delivered: number;
}

const SESSION_TIMEOUT_MS = 10_000;
const CONNECT_CONCURRENCY = 50;
const CONNECT_ATTEMPTS = 5;
/** run.ts --websocket-only: clients open with WebSocket at once, as socket.io-client with `transports: ['websocket']`. */
const WEBSOCKET_ONLY = process.env.BENCH_WEBSOCKET_ONLY === '1';
/** run.ts --one-address: every client connects from 127.0.0.1, as clients behind one NAT or proxy. */
const ONE_ADDRESS = process.env.BENCH_ONE_ADDRESS === '1';
/** Which load process this is: its clients' addresses are its own (127.<20 + index>.x.y). */
const LOAD_INDEX = Number(process.env.BENCH_LOAD_INDEX ?? 0);
const TEXT = 'a chat message of some sixty characters, as people type them';

/** One clock for every process of the machine (CLOCK_MONOTONIC on Linux), in ms. */
const now = (): number => Number(process.hrtime.bigint()) / 1e6;

interface Client {
  ws: WebSocket;
  acks: Map<number, (answer: string) => void>;
}

let clientsMade = 0;

/** Each session's client a loopback address of its own, as people on the internet have; 62,500 in turn. */
function nextClientAddress(): string {
  if (ONE_ADDRESS) return '127.0.0.1';
  const n = clientsMade++ % 62_500;
  return `127.${20 + LOAD_INDEX}.${Math.floor(n / 250)}.${(n % 250) + 1}`;
}

function handshake(port: number, localAddress: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port, path: '/socket.io/?EIO=4&transport=polling', agent: false, localAddress },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          if (res.statusCode !== 200 || body[0] !== '0')
            return reject(new Error(`handshake: ${res.statusCode} ${body}`));
          resolve((JSON.parse(body.slice(1)) as { sid: string }).sid);
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(SESSION_TIMEOUT_MS, () => req.destroy(new Error('no handshake answer within 10 s')));
    req.on('error', reject);
  });
}

/** A session through to Socket.IO's CONNECT over the upgraded WebSocket. */
async function openSession(port: number, onEvent: (data: Buffer, client: Client) => void): Promise<Client> {
  const localAddress = nextClientAddress();
  const sid = WEBSOCKET_ONLY ? undefined : await handshake(port, localAddress);
  const ws = new WebSocket(
    `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket${sid ? `&sid=${encodeURIComponent(sid)}` : ''}`,
    { perMessageDeflate: false, skipUTF8Validation: true, localAddress },
  );
  const client: Client = { ws, acks: new Map() };
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('no CONNECT within 10 s')), SESSION_TIMEOUT_MS).unref();
    const fail = (err: Error): void => {
      clearTimeout(timer);
      ws.terminate();
      reject(err);
    };
    ws.once('error', fail);
    ws.once('unexpected-response', (_req, res) => fail(new Error(`upgrade: ${res.statusCode}`)));
    ws.once('close', (code) => fail(new Error(`closed during set-up (${code})`)));
    ws.once('open', () => sid && ws.send('2probe'));
    ws.on('message', (data: Buffer) => {
      // "2": the server's ping; "3probe": the probe's answer; "40{...}": CONNECT done; "42[...]": an event.
      if (data.length === 1 && data[0] === 0x32) return ws.send('3');
      if (data[0] === 0x34 && data[1] === 0x32) return onEvent(data, client);
      if (data[0] === 0x34 && data[1] === 0x33) return answerAck(client, data.toString());
      const text = data.toString();
      if (text[0] === '0') ws.send('40');
      else if (text === '3probe') {
        ws.send('5');
        ws.send('40');
      } else if (text.startsWith('40')) {
        clearTimeout(timer);
        ws.removeAllListeners('close').removeAllListeners('unexpected-response');
        resolve();
      } else if (text.startsWith('44')) fail(new Error(`CONNECT refused: ${text}`));
    });
  });
  return client;
}

function answerAck(client: Client, text: string): void {
  // 43<id>[answer]
  const bracket = text.indexOf('[');
  const id = Number(text.slice(2, bracket));
  client.acks.get(id)?.((JSON.parse(text.slice(bracket)) as string[])[0]!);
  client.acks.delete(id);
}

function ask(client: Client, event: string, id: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to '${event}' within 10 s`)), 10_000).unref();
    client.acks.set(id, (answer) => {
      clearTimeout(timer);
      resolve(answer);
    });
    client.ws.send(`42${id}${JSON.stringify([event])}`);
  });
}

/** Sessions set up (and closed) one after another by `concurrency` loops, for `ms`. */
async function sessions(port: number, concurrency: number, ms: number): Promise<SessionsResult> {
  const cpu = process.cpuUsage();
  const until = now() + ms;
  let count = 0;
  let errors = 0;
  let firstError: string | undefined;
  const loop = async (): Promise<void> => {
    while (now() < until) {
      try {
        const client = await openSession(port, () => {});
        if (now() <= until) count++;
        client.ws.close();
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
        await new Promise((resolve) => setTimeout(resolve, 10).unref());
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const used = process.cpuUsage(cpu);
  return { sessions: count, errors, firstError, cpuUs: used.user + used.system };
}

// The fan-out clients of this process, and what they have received since `track`.
let clients: Client[] = [];
let deliveredBySeq = new Map<number, number>();
let latencies: number[] = [];
let delivered = 0;
let trackCpu = process.cpuUsage();

function onBroadcast(data: Buffer): void {
  // 42["broadcast",{"seq":12,"t":345.678,"text":"..."}]
  const text = data.toString('latin1');
  const at = text.indexOf('"seq":');
  if (at < 0) return;
  const seq = Number.parseInt(text.slice(at + 6, at + 20), 10);
  const sent = Number.parseFloat(text.slice(text.indexOf('"t":', at) + 4));
  latencies.push(now() - sent);
  delivered++;
  const count = (deliveredBySeq.get(seq) ?? 0) + 1;
  if (count === clients.length) {
    deliveredBySeq.delete(seq);
    process.send!({ delivered: seq } satisfies Delivered);
  } else deliveredBySeq.set(seq, count);
}

async function connect(port: number, count: number): Promise<ConnectResult> {
  const opened: Client[] = [];
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const loop = async (): Promise<void> => {
    while (next < count) {
      next++;
      for (let attempt = 1; ; attempt++) {
        try {
          opened.push(await openSession(port, onBroadcast));
          break;
        } catch (err) {
          errors++;
          firstError ??= (err as Error).message;
          if (attempt === CONNECT_ATTEMPTS) throw new Error(`${attempt} attempts to connect failed: ${firstError}`);
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(CONNECT_CONCURRENCY, count) }, loop));
  } catch (err) {
    for (const client of opened) client.ws.terminate();
    throw err;
  }
  clients = opened;
  const byWorker: Record<string, number> = {};
  for (const where of await Promise.all(clients.map((client) => ask(client, 'where', 1)))) {
    byWorker[where] = (byWorker[where] ?? 0) + 1;
  }
  return { byWorker, errors, firstError };
}

function emit(seq: number): void {
  clients[0]!.ws.send(`42${JSON.stringify(['broadcast', { seq, t: now(), text: TEXT }])}`);
}

/** Emits `rate` broadcasts a second for `ms`, on schedule however late a timer fires; how many. */
function emitAtRate(firstSeq: number, rate: number, ms: number): Promise<number> {
  const total = Math.round((rate * ms) / 1000);
  const start = now();
  let sent = 0;
  return new Promise((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((now() - start) * rate) / 1000) + 1);
      while (sent < due) emit(firstSeq + sent++);
      if (sent >= total) resolve(sent);
      else setTimeout(tick, Math.max(0, start + (sent * 1000) / rate - now())).unref();
    };
    tick();
  });
}

function usage(): Usage {
  const used = process.cpuUsage(trackCpu);
  return { delivered, cpuUs: used.user + used.system };
}

async function handle(command: Command): Promise<unknown> {
  switch (command.cmd) {
    case 'sessions':
      return sessions(command.port, command.concurrency, command.ms);
    case 'connect':
      return connect(command.port, command.clients);
    case 'track':
      deliveredBySeq = new Map();
      latencies = [];
      delivered = 0;
      trackCpu = process.cpuUsage();
      return {};
    case 'emit':
      emit(command.seq);
      return undefined;
    case 'emitAtRate':
      return emitAtRate(command.firstSeq, command.rate, command.ms);
    case 'usage':
      return usage();
    case 'latencies':
      return { ...usage(), latencies: Float64Array.from(latencies) };
    case 'disconnect':
      for (const client of clients) client.ws.terminate();
      clients = [];
      return {};
  }
}

process.on('message', (message: { id: number; command: Command }) => {
  handle(message.command).then(
    (result) => result !== undefined && process.send!({ id: message.id, result }),
    (err: Error) => process.send!({ id: message.id, error: err.message }),
  );
});
// The benchmark went away: so does its load.
process.on('disconnect', () => process.exit(0));
