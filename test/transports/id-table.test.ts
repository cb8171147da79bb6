import t from 'tap';

// Internal: the pipe transport's table of live connections, by the id its workers report back.
const { IdTable } = (await import(new URL('../../dist/lib/transports/pipe/id-table.js', import.meta.url).href)) as {
  IdTable: new <T>() => {
    readonly size: number;
    add(entry: T): number | undefined;
    get(id: number): T | undefined;
    delete(id: number): void;
    entries(): IterableIterator<[number, T]>;
    clear(): void;
  };
};

t.test('entries are found by the id they were given, until deleted', async (t) => {
  const table = new IdTable<string>();
  const a = table.add('a')!;
  const b = table.add('b')!;
  t.not(a, b);
  t.equal(table.get(a), 'a');
  t.equal(table.get(b), 'b');
  t.equal(table.size, 2);
  table.delete(a);
  t.equal(table.get(a), undefined);
  t.equal(table.size, 1);
  t.same([...table.entries()], [[b, 'b']]);
});

t.test('a reused cell does not answer to the id of its previous entry', async (t) => {
  const table = new IdTable<string>();
  const first = table.add('first')!;
  table.delete(first);
  const second = table.add('second')!;
  t.not(second, first, 'a new id for the same cell');
  t.equal(table.get(first), undefined, 'the stale id finds nothing');
  table.delete(first);
  t.equal(table.get(second), 'second', 'deleting by the stale id leaves the new entry');
  t.equal(table.size, 1);
});

t.test('ids stay safe integers over many reuses', async (t) => {
  const table = new IdTable<number>();
  const seen = new Set<number>();
  const unsafe: number[] = [];
  for (let i = 0; i < 10_000; i++) {
    const id = table.add(i)!;
    if (!Number.isSafeInteger(id) || id < 0) unsafe.push(id);
    seen.add(id);
    table.delete(id);
  }
  t.same(unsafe, [], 'every id a safe, non-negative integer');
  t.equal(seen.size, 10_000, 'no id repeats');
  t.equal(table.size, 0);
});

t.test('unknown and malformed ids find nothing and delete nothing', async (t) => {
  const table = new IdTable<string>();
  const id = table.add('kept')!;
  for (const bad of [id + 1, 2 ** 40, 0, 7, -id, id + 0.5, NaN, Infinity]) {
    if (bad === id) continue;
    t.equal(table.get(bad), undefined, `get(${bad})`);
    table.delete(bad);
  }
  t.equal(table.get(id), 'kept');
  t.equal(table.size, 1);
  table.clear();
  t.equal(table.size, 0);
  t.equal(table.get(id), undefined);
});

t.test('after clear(), no earlier id is given out again', async (t) => {
  const table = new IdTable<string>();
  const before = [table.add('a')!, table.add('b')!];
  table.clear();
  const after = [table.add('c')!, table.add('d')!];
  t.same(
    after.filter((id) => before.includes(id)),
    [],
    'new ids',
  );
  for (const id of before) table.delete(id);
  t.same(
    after.map((id) => table.get(id)),
    ['c', 'd'],
    'stale ids delete nothing',
  );
  t.equal(table.size, 2);
});
