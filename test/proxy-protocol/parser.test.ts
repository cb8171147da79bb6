import net from 'node:net';
import t from 'tap';

type Parsed =
  | { status: 'incomplete' }
  | { status: 'invalid'; reason: string }
  | {
      status: 'ok';
      length: number;
      info:
        | {
            remote: { address: string; family: string; port: number };
            local: { address: string; family: string; port: number };
          }
        | undefined;
    };

const { parseProxyHeader, V1_MAX_BYTES, V2_MAX_BYTES } = (await import(
  new URL('../../dist/lib/proxy-protocol/parser.js', import.meta.url).href
)) as {
  parseProxyHeader: (data: Buffer) => Parsed;
  V1_MAX_BYTES: number;
  V2_MAX_BYTES: number;
};

const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const PAYLOAD = Buffer.from('GET / HTTP/1.1\r\n\r\n');

interface V2 {
  versionCommand?: number;
  familyProtocol?: number;
  body?: Buffer;
  /** The declared length, when it should not match the body. */
  length?: number;
}

function v2({
  versionCommand = 0x21,
  familyProtocol = 0x11,
  body = Buffer.alloc(0),
  length = body.length,
}: V2): Buffer {
  const fixed = Buffer.alloc(16);
  SIGNATURE.copy(fixed);
  fixed[12] = versionCommand;
  fixed[13] = familyProtocol;
  fixed.writeUInt16BE(length, 14);
  return Buffer.concat([fixed, body]);
}

function ipv4Body(
  source: string,
  destination: string,
  sourcePort: number,
  destinationPort: number,
  tlvs = Buffer.alloc(0),
): Buffer {
  const body = Buffer.alloc(12);
  source.split('.').forEach((octet, i) => (body[i] = Number(octet)));
  destination.split('.').forEach((octet, i) => (body[4 + i] = Number(octet)));
  body.writeUInt16BE(sourcePort, 8);
  body.writeUInt16BE(destinationPort, 10);
  return Buffer.concat([body, tlvs]);
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail = ''] = address.split('::');
  const groups = (text: string): string[] => (text === '' ? [] : text.split(':'));
  const all = address.includes('::')
    ? [...groups(head), ...Array<string>(8 - groups(head).length - groups(tail).length).fill('0'), ...groups(tail)]
    : groups(address);
  const bytes = Buffer.alloc(16);
  all.forEach((group, i) => bytes.writeUInt16BE(parseInt(group, 16), i * 2));
  return bytes;
}

function ipv6Body(source: string, destination: string, sourcePort: number, destinationPort: number): Buffer {
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(sourcePort, 0);
  ports.writeUInt16BE(destinationPort, 2);
  return Buffer.concat([ipv6Bytes(source), ipv6Bytes(destination), ports]);
}

interface Valid {
  name: string;
  header: Buffer;
  info: Extract<Parsed, { status: 'ok' }>['info'];
}

const valid: Valid[] = [
  {
    name: 'v1 TCP4',
    header: Buffer.from('PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n'),
    info: {
      remote: { address: '192.0.2.1', family: 'IPv4', port: 56324 },
      local: { address: '198.51.100.2', family: 'IPv4', port: 443 },
    },
  },
  {
    name: 'v1 TCP4 with ports 0 and 65535',
    header: Buffer.from('PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n'),
    info: {
      remote: { address: '0.0.0.0', family: 'IPv4', port: 0 },
      local: { address: '255.255.255.255', family: 'IPv4', port: 65535 },
    },
  },
  {
    name: 'v1 TCP6',
    header: Buffer.from('PROXY TCP6 2001:db8::1 2001:db8::2:1 1 65535\r\n'),
    info: {
      remote: { address: '2001:db8::1', family: 'IPv6', port: 1 },
      local: { address: '2001:db8::2:1', family: 'IPv6', port: 65535 },
    },
  },
  {
    name: 'v1 TCP6, longest form',
    header: Buffer.from(
      'PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n',
    ),
    info: {
      remote: { address: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', family: 'IPv6', port: 65535 },
      local: { address: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', family: 'IPv6', port: 65535 },
    },
  },
  { name: 'v1 UNKNOWN', header: Buffer.from('PROXY UNKNOWN\r\n'), info: undefined },
  { name: 'v1 UNKNOWN with addresses', header: Buffer.from('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n'), info: undefined },
  // The spec's worst case: 107 bytes, CRLF included.
  {
    name: 'v1 UNKNOWN of 107 bytes',
    header: Buffer.from(`PROXY UNKNOWN ${'x'.repeat(V1_MAX_BYTES - 16)}\r\n`),
    info: undefined,
  },
  {
    name: 'v2 PROXY TCP4',
    header: v2({ body: ipv4Body('203.0.113.9', '10.0.0.1', 40000, 8080) }),
    info: {
      remote: { address: '203.0.113.9', family: 'IPv4', port: 40000 },
      local: { address: '10.0.0.1', family: 'IPv4', port: 8080 },
    },
  },
  {
    name: 'v2 PROXY TCP4 with TLVs',
    header: v2({ body: ipv4Body('203.0.113.9', '10.0.0.1', 1, 2, Buffer.from([0x04, 0x00, 0x03, 0x61, 0x62, 0x63])) }),
    info: {
      remote: { address: '203.0.113.9', family: 'IPv4', port: 1 },
      local: { address: '10.0.0.1', family: 'IPv4', port: 2 },
    },
  },
  {
    name: 'v2 PROXY TCP6',
    header: v2({ familyProtocol: 0x21, body: ipv6Body('2001:db8::7', '::1', 65535, 443) }),
    info: {
      remote: { address: '2001:db8::7', family: 'IPv6', port: 65535 },
      local: { address: '::1', family: 'IPv6', port: 443 },
    },
  },
  { name: 'v2 LOCAL', header: v2({ versionCommand: 0x20, familyProtocol: 0x00 }), info: undefined },
  // A LOCAL connection (a balancer's health check) may still carry addresses: they are ignored.
  {
    name: 'v2 LOCAL with addresses',
    header: v2({ versionCommand: 0x20, body: ipv4Body('1.2.3.4', '5.6.7.8', 1, 2) }),
    info: undefined,
  },
  { name: 'v2 PROXY UNSPEC', header: v2({ familyProtocol: 0x00 }), info: undefined },
  {
    name: 'v2 PROXY UNSPEC with TLVs',
    header: v2({ familyProtocol: 0x00, body: Buffer.from([0x04, 0x00, 0x01, 0x7a]) }),
    info: undefined,
  },
  {
    name: 'v2 of the largest length accepted',
    header: v2({ familyProtocol: 0x00, body: Buffer.alloc(V2_MAX_BYTES - 16) }),
    info: undefined,
  },
];

t.test('valid headers are read, and the bytes after them are left alone', async (t) => {
  for (const { name, header, info } of valid) {
    t.same(parseProxyHeader(header), { status: 'ok', length: header.length, info }, name);
    t.same(
      parseProxyHeader(Buffer.concat([header, PAYLOAD])),
      { status: 'ok', length: header.length, info },
      `${name}, then data`,
    );
    // A second header right after is data, not part of the first.
    t.same(
      parseProxyHeader(Buffer.concat([header, header])),
      { status: 'ok', length: header.length, info },
      `${name}, twice`,
    );
  }
});

t.test('every proper prefix of a valid header is incomplete', async (t) => {
  t.same(parseProxyHeader(Buffer.alloc(0)), { status: 'incomplete' }, 'empty');
  for (const { name, header } of valid) {
    const wrong: number[] = [];
    for (let length = 1; length < header.length; length++) {
      if (parseProxyHeader(header.subarray(0, length)).status !== 'incomplete') wrong.push(length);
    }
    t.same(wrong, [], `${name}: prefixes of 1 to ${header.length - 1} bytes`);
  }
});

interface Invalid {
  name: string;
  data: Buffer | string;
  reason: RegExp;
}

const v1 = (line: string): string => `${line}\r\n`;

const invalid: Invalid[] = [
  { name: 'no header: HTTP', data: 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', reason: /no PROXY header/ },
  { name: 'no header: TLS hello', data: Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5]), reason: /no PROXY header/ },
  { name: 'lower-case proxy', data: v1('proxy TCP4 1.2.3.4 5.6.7.8 1 2'), reason: /no PROXY header/ },
  { name: 'PROXY without a space', data: 'PROXY\r\n', reason: /no PROXY header/ },
  { name: 'PROXX', data: 'PROXX TCP4', reason: /no PROXY header/ },
  { name: 'v1: no CRLF within 107 bytes', data: `PROXY TCP4 ${'1'.repeat(200)}`, reason: /longer than 107/ },
  {
    name: 'v1: CRLF at bytes 107 and 108',
    data: `PROXY UNKNOWN ${'x'.repeat(V1_MAX_BYTES - 15)}\r\n`,
    reason: /longer than 107/,
  },
  {
    name: 'v1: CR without LF, 107 bytes',
    data: `PROXY UNKNOWN\r${'x'.repeat(V1_MAX_BYTES - 14)}`,
    reason: /longer than 107/,
  },
  { name: 'v1: lone LF', data: 'PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\nGET / HTTP/1.1\r\n', reason: /CRLF/ },
  { name: 'v1: lone LF right after PROXY', data: 'PROXY \n', reason: /CRLF/ },
  { name: 'v1: LF CR', data: 'PROXY UNKNOWN\n\r', reason: /CRLF/ },
  { name: 'v1: protocol TCP5', data: v1('PROXY TCP5 1.2.3.4 5.6.7.8 1 2'), reason: /malformed v1 header/ },
  { name: 'v1: protocol tcp4', data: v1('PROXY tcp4 1.2.3.4 5.6.7.8 1 2'), reason: /malformed v1 header/ },
  { name: 'v1: protocol UDP4', data: v1('PROXY UDP4 1.2.3.4 5.6.7.8 1 2'), reason: /malformed v1 header/ },
  { name: 'v1: no protocol', data: v1('PROXY '), reason: /malformed v1 header/ },
  { name: 'v1: missing destination port', data: v1('PROXY TCP4 1.2.3.4 5.6.7.8 1'), reason: /malformed v1 header/ },
  { name: 'v1: an extra field', data: v1('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3'), reason: /malformed v1 header/ },
  { name: 'v1: two spaces', data: v1('PROXY TCP4  1.2.3.4 5.6.7.8 1 2'), reason: /malformed v1 header/ },
  { name: 'v1: trailing space', data: v1('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 '), reason: /malformed v1 header/ },
  { name: 'v1: tab for space', data: v1('PROXY TCP4\t1.2.3.4 5.6.7.8 1 2'), reason: /malformed v1 header/ },
  { name: 'v1: IPv4 octet 256', data: v1('PROXY TCP4 256.2.3.4 5.6.7.8 1 2'), reason: /malformed v1 addresses/ },
  { name: 'v1: three IPv4 octets', data: v1('PROXY TCP4 1.2.3 5.6.7.8 1 2'), reason: /malformed v1 addresses/ },
  {
    name: 'v1: IPv4 octet with a leading zero',
    data: v1('PROXY TCP4 01.2.3.4 5.6.7.8 1 2'),
    reason: /malformed v1 addresses/,
  },
  { name: 'v1: a host name', data: v1('PROXY TCP4 localhost 5.6.7.8 1 2'), reason: /malformed v1 addresses/ },
  { name: 'v1: IPv6 under TCP4', data: v1('PROXY TCP4 ::1 5.6.7.8 1 2'), reason: /malformed v1 addresses/ },
  { name: 'v1: IPv4 under TCP6', data: v1('PROXY TCP6 1.2.3.4 ::1 1 2'), reason: /malformed v1 addresses/ },
  { name: 'v1: IPv6 with two ::', data: v1('PROXY TCP6 1::2::3 ::1 1 2'), reason: /malformed v1 addresses/ },
  { name: 'v1: port 65536', data: v1('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2'), reason: /malformed v1 addresses/ },
  { name: 'v1: port 99999', data: v1('PROXY TCP4 1.2.3.4 5.6.7.8 1 99999'), reason: /malformed v1 addresses/ },
  { name: 'v1: port 123456', data: v1('PROXY TCP4 1.2.3.4 5.6.7.8 123456 2'), reason: /malformed v1 addresses/ },
  {
    name: 'v1: port with a leading zero',
    data: v1('PROXY TCP4 1.2.3.4 5.6.7.8 080 2'),
    reason: /malformed v1 addresses/,
  },
  { name: 'v1: port 00', data: v1('PROXY TCP4 1.2.3.4 5.6.7.8 1 00'), reason: /malformed v1 addresses/ },
  { name: 'v1: negative port', data: v1('PROXY TCP4 1.2.3.4 5.6.7.8 -1 2'), reason: /malformed v1 addresses/ },
  { name: 'v1: port with a plus sign', data: v1('PROXY TCP4 1.2.3.4 5.6.7.8 +1 2'), reason: /malformed v1 addresses/ },
  { name: 'v1: port in hex', data: v1('PROXY TCP4 1.2.3.4 5.6.7.8 0x10 2'), reason: /malformed v1 addresses/ },
  { name: 'v1: port in exponent form', data: v1('PROXY TCP4 1.2.3.4 5.6.7.8 1e3 2'), reason: /malformed v1 addresses/ },
  {
    name: 'v1: empty port',
    data: v1('PROXY TCP4 1.2.3.4 5.6.7.8 1 '),
    reason: /malformed v1 header|malformed v1 addresses/,
  },
  {
    name: 'v2: signature wrong in its fourth byte, early',
    data: Buffer.from([0x0d, 0x0a, 0x0d, 0x0b]),
    reason: /signature/,
  },
  {
    name: 'v2: wrong version 1',
    data: v2({ versionCommand: 0x11, body: ipv4Body('1.2.3.4', '5.6.7.8', 1, 2) }),
    reason: /version/,
  },
  {
    name: 'v2: wrong version 3',
    data: v2({ versionCommand: 0x31, body: ipv4Body('1.2.3.4', '5.6.7.8', 1, 2) }),
    reason: /version/,
  },
  { name: 'v2: wrong version 0', data: v2({ versionCommand: 0x01 }), reason: /version/ },
  { name: 'v2: wrong version 15', data: v2({ versionCommand: 0xf1 }), reason: /version/ },
  { name: 'v2: command 2', data: v2({ versionCommand: 0x22 }), reason: /command/ },
  { name: 'v2: command 15', data: v2({ versionCommand: 0x2f }), reason: /command/ },
  {
    name: 'v2: declared length one above the maximum',
    data: v2({ familyProtocol: 0x00, length: V2_MAX_BYTES - 15 }),
    reason: /too long/,
  },
  { name: 'v2: declared length 65535', data: v2({ familyProtocol: 0x00, length: 0xffff }), reason: /too long/ },
  { name: 'v2: TCP4 body of 11 bytes', data: v2({ body: Buffer.alloc(11) }), reason: /too short/ },
  {
    name: 'v2: TCP6 body of 35 bytes',
    data: v2({ familyProtocol: 0x21, body: Buffer.alloc(35) }),
    reason: /too short/,
  },
  {
    name: 'v2: TCP6 body of IPv4 size',
    data: v2({ familyProtocol: 0x21, body: ipv4Body('1.2.3.4', '5.6.7.8', 1, 2) }),
    reason: /too short/,
  },
  {
    name: 'v2: address family 4',
    data: v2({ familyProtocol: 0x41, body: Buffer.alloc(12) }),
    reason: /address family/,
  },
  {
    name: 'v2: transport protocol 3',
    data: v2({ familyProtocol: 0x13, body: Buffer.alloc(12) }),
    reason: /address family/,
  },
  {
    name: 'v2: IPv4 with no transport protocol',
    data: v2({ familyProtocol: 0x10, body: Buffer.alloc(12) }),
    reason: /address family/,
  },
];

// Every byte of the signature matters, the first included (it then reads as no header at all).
for (let i = 0; i < SIGNATURE.length; i++) {
  const data = v2({ body: ipv4Body('1.2.3.4', '5.6.7.8', 1, 2) });
  data[i] = data[i]! ^ 0x20;
  invalid.push({ name: `v2: signature wrong in byte ${i}`, data, reason: i === 0 ? /no PROXY header/ : /signature/ });
}

t.test('invalid headers are rejected, with a reason', async (t) => {
  for (const { name, data, reason } of invalid) {
    const parsed = parseProxyHeader(Buffer.from(data));
    t.equal(parsed.status, 'invalid', name);
    if (parsed.status === 'invalid') t.match(parsed.reason, reason, `${name}: ${parsed.reason}`);
  }
});

// HAProxy reads v1 addresses with inet_pton(), which knows no zone: a zone is not an address a
// client can have, and would reach the app as part of clientAddress.
t.test('v1: an IPv6 address with a zone is rejected', async (t) => {
  for (const address of ['fe80::1%eth0', 'fe80::1%1', `fe80::1%${'z'.repeat(50)}`]) {
    t.equal(parseProxyHeader(Buffer.from(v1(`PROXY TCP6 ${address} ::1 1 2`))).status, 'invalid', address);
  }
});

t.test('a header rejected early stays rejected whatever follows', async (t) => {
  const early = [
    Buffer.from('PROXY \n'),
    Buffer.from([0x0d, 0x0a, 0x0d, 0x0b]),
    v2({ versionCommand: 0x11 }),
    v2({ familyProtocol: 0x00, length: 0xffff }),
  ];
  for (const data of early) {
    t.equal(parseProxyHeader(data).status, 'invalid');
    t.equal(parseProxyHeader(Buffer.concat([data, Buffer.alloc(5000, 0x41)])).status, 'invalid');
  }
});

t.test('megabyte inputs cost no more than small ones', async (t) => {
  const huge = [
    Buffer.concat([Buffer.from('PROXY TCP4 '), Buffer.alloc(1 << 20, 0x31)]),
    Buffer.concat([v2({ familyProtocol: 0x00, length: V2_MAX_BYTES - 16 }).subarray(0, 16), Buffer.alloc(1 << 20)]),
    Buffer.concat([Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), Buffer.alloc(1 << 20)]),
  ];
  for (const data of huge) {
    const elapsed = timed(data).ms;
    t.ok(elapsed < 10, `${elapsed.toFixed(3)} ms for ${data.length} bytes`);
  }
});

// A seeded generator, so that a failing input can be found again from the seed in the output.
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let r = Math.imul(a ^ (a >>> 15), 1 | a);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

function timed(data: Buffer): { parsed: Parsed; ms: number } {
  const start = performance.now();
  const parsed = parseProxyHeader(data);
  return { parsed, ms: performance.now() - start };
}

/** Why `parsed` breaks what a caller relies on, or undefined. */
function brokenContract(data: Buffer, parsed: Parsed): string | undefined {
  switch (parsed.status) {
    case 'incomplete':
      // The caller buffers until complete: that must be bounded.
      if (data.length >= V2_MAX_BYTES) return `incomplete after ${data.length} bytes`;
      if (data[0] === 0x50 && data.length >= V1_MAX_BYTES) return `v1 incomplete after ${data.length} bytes`;
      return undefined;
    case 'invalid':
      return typeof parsed.reason === 'string' && parsed.reason.length > 0 ? undefined : 'no reason';
    case 'ok': {
      if (
        !Number.isInteger(parsed.length) ||
        parsed.length < 15 ||
        parsed.length > data.length ||
        parsed.length > V2_MAX_BYTES
      ) {
        return `length ${parsed.length} of ${data.length} bytes`;
      }
      const again = parseProxyHeader(data.subarray(0, parsed.length));
      if (again.status !== 'ok' || again.length !== parsed.length) return 'the header alone does not parse the same';
      if (parsed.info === undefined) return undefined;
      for (const end of [parsed.info.remote, parsed.info.local]) {
        const family = net.isIP(end.address);
        if (family === 0 || end.family !== `IPv${family}`) return `address ${end.address} (${end.family})`;
        if (!Number.isInteger(end.port) || end.port < 0 || end.port > 65535) return `port ${end.port}`;
      }
      return undefined;
    }
    default:
      return `status ${(parsed as { status: unknown }).status}`;
  }
}

const V1_ALPHABET = [
  'PROXY ',
  'TCP4 ',
  'TCP6 ',
  'UNKNOWN',
  ' ',
  ':',
  '::',
  '.',
  '\r',
  '\n',
  '\r\n',
  '0',
  '1',
  '25',
  '255',
  '65535',
  'ffff',
  'a',
  '%',
  '-',
  '\0',
];
const SEEDS = valid.map((entry) => entry.header);

function randomBytes(random: () => number, length: number): Buffer {
  const data = Buffer.alloc(length);
  for (let i = 0; i < length; i++) data[i] = Math.floor(random() * 256);
  return data;
}

function fuzzInput(random: () => number): Buffer {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const kind = random();
  if (kind < 0.3) return randomBytes(random, Math.floor(random() * 301));
  if (kind < 0.5) {
    // Text that reaches deep into the v1 parser.
    let text = 'PROXY ';
    const target = Math.floor(random() * 300);
    while (text.length < target) text += pick(V1_ALPHABET);
    return Buffer.from(text.slice(0, 300), 'latin1');
  }
  if (kind < 0.6) {
    // A v2 signature followed by random version, family, length and body.
    return Buffer.concat([SIGNATURE, randomBytes(random, Math.floor(random() * 289))]);
  }
  // A valid header, mutated: bytes flipped, inserted, deleted, or the whole cut or extended.
  let data: Buffer = Buffer.from(pick(SEEDS));
  const mutations = 1 + Math.floor(random() * 4);
  for (let m = 0; m < mutations; m++) {
    const at = Math.floor(random() * (data.length + 1));
    const how = random();
    if (how < 0.4 && data.length > 0) data[Math.min(at, data.length - 1)] = Math.floor(random() * 256);
    else if (how < 0.6)
      data = Buffer.concat([
        data.subarray(0, at),
        randomBytes(random, 1 + Math.floor(random() * 8)),
        data.subarray(at),
      ]);
    else if (how < 0.8) data = Buffer.concat([data.subarray(0, at), data.subarray(at + 1 + Math.floor(random() * 8))]);
    else if (how < 0.9) data = data.subarray(0, at);
    else data = Buffer.concat([data, randomBytes(random, Math.floor(random() * 64))]);
  }
  return data.subarray(0, 300);
}

t.test('fuzz: 100,000 random and mutated inputs never throw, never break the contract, never take 10 ms', async (t) => {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
  const random = mulberry32(seed);
  const runs = 100_000;
  const counts = { ok: 0, invalid: 0, incomplete: 0 };
  const failures: string[] = [];
  let maxMs = 0;
  let maxRetriedMs = 0;
  for (let i = 0; i < runs && failures.length < 10; i++) {
    const data = fuzzInput(random);
    let result: { parsed: Parsed; ms: number };
    try {
      result = timed(data);
    } catch (err) {
      failures.push(`threw ${(err as Error).message} on ${data.toString('hex')}`);
      continue;
    }
    counts[result.parsed.status]++;
    const broken = brokenContract(data, result.parsed);
    if (broken) failures.push(`${broken}: ${data.toString('hex')}`);
    maxMs = Math.max(maxMs, result.ms);
    if (result.ms > 10) {
      // This machine is shared: a slow input is slow every time, a descheduled thread only once.
      const retried = Math.min(...Array.from({ length: 5 }, () => timed(data).ms));
      maxRetriedMs = Math.max(maxRetriedMs, retried);
      if (retried > 10) failures.push(`${retried.toFixed(3)} ms on ${data.toString('hex')}`);
    }
  }
  t.comment(
    `seed ${seed}: ${JSON.stringify(counts)}; slowest call ${maxMs.toFixed(3)} ms${maxRetriedMs ? `, ${maxRetriedMs.toFixed(3)} ms when repeated` : ''}`,
  );
  t.same(failures, [], `seed ${seed}`);
  t.equal(counts.ok + counts.invalid + counts.incomplete, runs, 'every input was parsed');
  // The mix must reach every outcome, or the fuzzing tests less than it claims.
  t.ok(counts.ok > 1000 && counts.invalid > 1000 && counts.incomplete > 1000, JSON.stringify(counts));
});
