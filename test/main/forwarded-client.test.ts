import net from 'node:net';
import t from 'tap';

type Headers = Record<string, string | string[] | undefined>;
const { forwardedClient } = (await import(new URL('../../dist/lib/protocol/forwarded.js', import.meta.url).href)) as {
  forwardedClient: (headers: Headers, peer: string, trusted: net.BlockList) => string;
};

function trusting(...entries: string[]): net.BlockList {
  const list = new net.BlockList();
  for (const entry of entries) {
    const [address = '', prefix] = entry.split('/');
    const family = net.isIPv6(address) ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(prefix), family);
  }
  return list;
}

const proxies = trusting('127.0.0.1', '10.0.0.0/8', '::1');

t.test('X-Forwarded-For: the rightmost untrusted hop is the client', async (t) => {
  t.equal(forwardedClient({ 'x-forwarded-for': '203.0.113.7' }, '127.0.0.1', proxies), '203.0.113.7');
  t.equal(
    forwardedClient({ 'x-forwarded-for': '203.0.113.7, 10.1.1.1, 10.2.2.2' }, '127.0.0.1', proxies),
    '203.0.113.7',
    'a chain of trusted proxies is skipped',
  );
  t.equal(
    forwardedClient({ 'x-forwarded-for': '6.6.6.6, 1.1.1.1, 203.0.113.7' }, '127.0.0.1', proxies),
    '203.0.113.7',
    'entries left of the client, which it may have written itself, are not believed',
  );
  t.equal(
    forwardedClient({ 'x-forwarded-for': ['6.6.6.6', '203.0.113.7'] }, '127.0.0.1', proxies),
    '203.0.113.7',
    'several header lines are one list',
  );
  t.equal(
    forwardedClient({ 'x-forwarded-for': '10.9.9.9, 10.1.1.1' }, '::ffff:127.0.0.1', proxies),
    '10.9.9.9',
    'all trusted: the leftmost',
  );
});

t.test('from a peer not trusted, the headers are ignored', async (t) => {
  t.equal(forwardedClient({ 'x-forwarded-for': '6.6.6.6' }, '192.0.2.1', proxies), '192.0.2.1');
  t.equal(forwardedClient({ forwarded: 'for=6.6.6.6' }, '::ffff:192.0.2.1', proxies), '192.0.2.1', 'canonical form');
  t.equal(forwardedClient({ 'x-forwarded-for': '6.6.6.6' }, '127.0.0.1', trusting()), '127.0.0.1', 'trusting no one');
});

t.test('missing or empty headers: the peer', async (t) => {
  t.equal(forwardedClient({}, '127.0.0.1', proxies), '127.0.0.1');
  t.equal(forwardedClient({ 'x-forwarded-for': ' ' }, '127.0.0.1', proxies), '127.0.0.1');
});

t.test('ports, brackets and IPv4-mapped addresses', async (t) => {
  t.equal(forwardedClient({ 'x-forwarded-for': '203.0.113.7:4711' }, '127.0.0.1', proxies), '203.0.113.7');
  t.equal(forwardedClient({ 'x-forwarded-for': '[2001:db8::17]:4711' }, '::1', proxies), '2001:db8::17');
  t.equal(forwardedClient({ 'x-forwarded-for': '2001:db8::17' }, '::1', proxies), '2001:db8::17');
  t.equal(forwardedClient({ 'x-forwarded-for': '::ffff:203.0.113.7' }, '::1', proxies), '203.0.113.7');
  t.equal(
    forwardedClient({ 'x-forwarded-for': '203.0.113.7, [::ffff:10.0.0.5]:80' }, '::1', proxies),
    '203.0.113.7',
    'a trusted hop in mapped form is trusted',
  );
});

t.test('Forwarded (RFC 7239) wins over X-Forwarded-For', async (t) => {
  const headers = { forwarded: 'for=203.0.113.7;proto=https', 'x-forwarded-for': '6.6.6.6' };
  t.equal(forwardedClient(headers, '127.0.0.1', proxies), '203.0.113.7');
  t.equal(
    forwardedClient(
      { forwarded: 'for=6.6.6.6, For="[2001:db8:cafe::17]:4711";by=10.0.0.1, for=10.3.3.3' },
      '::1',
      proxies,
    ),
    '2001:db8:cafe::17',
    'quoted IPv6 with a port, parameter names in any case, a trusted hop skipped',
  );
  t.equal(
    forwardedClient({ forwarded: 'proto=http;for="203.0.113.7:80";host="a,b;c"' }, '127.0.0.1', proxies),
    '203.0.113.7',
    'separators inside quotes',
  );
  t.equal(forwardedClient({ forwarded: ['for=6.6.6.6', 'for=203.0.113.7'] }, '127.0.0.1', proxies), '203.0.113.7');
});

t.test('an obfuscated or malformed hop ends the walk at the last good one', async (t) => {
  t.equal(forwardedClient({ forwarded: 'for=unknown' }, '127.0.0.1', proxies), '127.0.0.1');
  t.equal(forwardedClient({ forwarded: 'for=6.6.6.6, for=_hidden, for=10.1.1.1' }, '127.0.0.1', proxies), '10.1.1.1');
  t.equal(forwardedClient({ forwarded: 'proto=https' }, '127.0.0.1', proxies), '127.0.0.1', 'an element without for=');
  t.equal(forwardedClient({ forwarded: 'for="[2001:db8::1' }, '127.0.0.1', proxies), '127.0.0.1', 'an unclosed quote');
  t.equal(forwardedClient({ 'x-forwarded-for': '6.6.6.6, unknown' }, '127.0.0.1', proxies), '127.0.0.1');
  t.equal(forwardedClient({ 'x-forwarded-for': '6.6.6.6, 10.1.1.1, not-an-ip' }, '127.0.0.1', proxies), '127.0.0.1');
  t.equal(forwardedClient({ 'x-forwarded-for': '6.6.6.6, 1.2.3.4:99999' }, '127.0.0.1', proxies), '127.0.0.1');
  t.equal(forwardedClient({ 'x-forwarded-for': '6.6.6.6,,10.1.1.1' }, '127.0.0.1', proxies), '10.1.1.1');
});
