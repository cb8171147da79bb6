import t from 'tap';

const { clientKey } = (await import(new URL('../../dist/lib/protocol/address-info.js', import.meta.url).href)) as {
  clientKey: (address: string, ipv6PrefixBits: number) => string;
};

// One client, one key: what the per-address limits count and ip-hash balances by.
t.test('an IPv4 client has one form, however the socket reports it', async (t) => {
  t.equal(clientKey('10.1.2.3', 64), '10.1.2.3');
  t.equal(clientKey('::ffff:10.1.2.3', 64), '10.1.2.3');
  t.equal(clientKey('::FFFF:10.1.2.3', 128), '10.1.2.3');
});

t.test('an IPv6 client is keyed by its /64 by default', async (t) => {
  t.equal(clientKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd', 64), '2001:db8:1:2::/64');
  t.equal(clientKey('2001:db8:1:2::1', 64), '2001:db8:1:2::/64', 'another address of the same /64, the same key');
  t.not(clientKey('2001:db8:1:3::1', 64), clientKey('2001:db8:1:2::1', 64), 'the next /64, another key');
  t.equal(clientKey('2001:DB8:1:2::1', 64), '2001:db8:1:2::/64', 'case does not matter');
  t.equal(clientKey('::1', 64), '0:0:0:0::/64');
  t.equal(clientKey('fe80::1%eth0', 64), 'fe80:0:0:0::/64', 'a zone is not part of the network');
  t.equal(clientKey('2001:db8::1.2.3.4', 64), '2001:db8:0:0::/64', 'an embedded IPv4 tail');
});

t.test('other prefixes', async (t) => {
  t.equal(clientKey('2001:db8:1:2::1', 128), '2001:db8:1:2::1', '128 keeps each address');
  t.equal(clientKey('2001:db8:1:2::1', 48), '2001:db8:1::/48');
  t.equal(clientKey('2001:db8:1:2::1', 56), '2001:db8:1:0::/56');
  t.equal(clientKey('2001:db8:1:ff::1', 56), '2001:db8:1:0::/56', 'bits past the prefix inside a group are cleared');
  t.equal(clientKey('2001:db8:1:1ff::1', 56), '2001:db8:1:100::/56');
});

t.test('what is not an IP address is its own key', async (t) => {
  t.equal(clientKey('', 64), '');
  t.equal(clientKey('not-an-address', 64), 'not-an-address');
});
