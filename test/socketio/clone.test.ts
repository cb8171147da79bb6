import t from 'tap';
import type * as Clone from '../../lib/socketio/clone.ts';

const { restoreBuffers, toCloneable } = (await import(
  new URL('../../dist/lib/socketio/clone.js', import.meta.url).href
)) as typeof Clone;

// What crosses a BroadcastChannel must arrive as socket.io would have sent it.
function across(value: unknown): unknown {
  const found = { binary: false };
  const sent = structuredClone(toCloneable(value, found));
  return found.binary ? restoreBuffers(sent) : sent;
}

t.test('a Buffer carries its own bytes, not its pool, and arrives as a Buffer', async (t) => {
  const small = Buffer.from('abc');
  t.ok(small.buffer.byteLength > 3, 'a small Buffer is a view of a larger pool');
  const found = { binary: false };
  const sent = toCloneable({ data: [small] }, found) as { data: [Uint8Array] };
  t.equal(found.binary, true, 'binary data is found');
  t.equal(sent.data[0].buffer.byteLength, 3, 'only its own bytes are cloned');
  const received = across({ data: [small, new Uint16Array([258]), new Uint8Array([9]).buffer] }) as { data: Buffer[] };
  t.ok(
    received.data.every((each) => Buffer.isBuffer(each)),
    'Buffers, typed arrays and ArrayBuffers arrive as Buffers',
  );
  t.same(
    received.data.map((each) => [...each]),
    [[97, 98, 99], [2, 1], [9]],
  );
});

t.test('as JSON would: toJSON() is honoured and functions are left out', async (t) => {
  class Money {
    readonly cents: number;
    constructor(cents: number) {
      this.cents = cents;
    }
    toJSON() {
      return `${this.cents / 100} EUR`;
    }
  }
  const received = across({ price: new Money(150), callback: () => 1, list: [() => 2, 3], when: new Date(0) });
  t.same(received, { price: '1.5 EUR', list: [null, 3], when: new Date(0) });
});

t.test('a message with nothing to change is sent as it is', async (t) => {
  const message = { type: 3, data: { packet: { type: 2, data: ['news', { a: [1, 'two'] }], nsp: '/' } } };
  const found = { binary: false };
  t.equal(toCloneable(message, found), message);
  t.equal(found.binary, false);
  const cyclic: Record<string, unknown> = { name: 'loop' };
  cyclic.self = cyclic;
  t.equal(toCloneable(cyclic, found), cyclic, 'a cycle, which structured clone keeps');
});
