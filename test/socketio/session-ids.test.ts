import t from 'tap';

// Internal: the session ids that name their worker, and reading a request's sid.
const { ownerOfSession, sessionIdFor, sessionOf } = (await import(
  new URL('../../dist/lib/protocol/sessions.js', import.meta.url).href
)) as typeof import('../../lib/protocol/sessions.ts');

t.test('a session id names its worker, and is as random as Engine.IO’s own', async (t) => {
  const ids = new Set<string>();
  for (const owner of [1, 7, 35, 36, 1234, 2 ** 31]) {
    for (let i = 0; i < 50; i++) {
      const sid = sessionIdFor(owner);
      t.equal(ownerOfSession(sid), owner, `${sid} names worker ${owner}`);
      t.match(sid, /^[0-9a-z]+\.[A-Za-z0-9_-]{20}$/, 'URL-safe');
      ids.add(sid);
    }
  }
  t.equal(ids.size, 300, 'no id twice');
});

t.test('an id socketnaut did not make names no worker', async (t) => {
  for (const sid of ['', 'AAAAAAAAAAAAAAAAAAAA', 'a-b_c', '.abc', 'zzzzzzzzzz.abc', '!.x']) {
    t.equal(ownerOfSession(sid), undefined, JSON.stringify(sid));
  }
});

t.test("a request's sid is read from its query alone", async (t) => {
  const cases: [string | undefined, string | undefined][] = [
    ['/socket.io/?EIO=4&transport=polling&sid=3.abc', '3.abc'],
    ['/socket.io/?sid=3.abc&EIO=4&transport=websocket', '3.abc'],
    ['/socket.io/?EIO=4&transport=polling&t=xsid=1', undefined],
    ['/socket.io/?EIO=4&xsid=2.a&sid=4.b', '4.b'],
    ['/socket.io/?EIO=4&transport=polling', undefined],
    ['/sid=1.a', undefined],
    ['/', undefined],
    [undefined, undefined],
  ];
  for (const [url, sid] of cases) t.equal(sessionOf(url), sid, String(url));
});
