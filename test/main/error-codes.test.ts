// lib/errors.ts is the registry of coded errors; README.md's "## Errors" table lists each of its codes.
import fs from 'node:fs';
import t from 'tap';

const errors = (await import(
  new URL('../../dist/lib/errors.js', import.meta.url).href
)) as typeof import('../../lib/errors.ts');
const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const CODE = /SOCKETNAUT_ERR_[A-Z0-9_]+/g;

/** The codes in the first column of the table under "## Errors". */
function listedCodes(): string[] {
  const lines = readme.split('\n');
  const at = lines.indexOf('## Errors');
  if (at === -1) return [];
  const start = lines.findIndex((line, i) => i > at && line.startsWith('|'));
  const end = lines.findIndex((line, i) => i > start && !line.startsWith('|'));
  return lines
    .slice(start + 2, end)
    .map((line) => /^\| `(SOCKETNAUT_ERR_[A-Z0-9_]+)` \|/.exec(line)?.[1] ?? `(not a code: ${line})`);
}

t.test('the registry: one code per error, named after its export', async (t) => {
  t.ok(errors.errorCodes.length > 0, 'codes are registered');
  t.same(errors.errorCodes, [...new Set(errors.errorCodes)], 'no code is defined twice');
  const exported = Object.entries(errors).filter(([name]) => name.startsWith('ERR_'));
  t.same(
    exported.map(([name]) => `SOCKETNAUT_${name}`).sort(),
    [...errors.errorCodes].sort(),
    'each export ERR_X has the code SOCKETNAUT_ERR_X',
  );
  for (const [name, Coded] of exported) {
    const err = new (Coded as new (...args: string[]) => Error & { code: string })('a', 'b', 'c');
    t.equal(err.code, `SOCKETNAUT_${name}`, `${name} raises errors with its code`);
  }
});

t.test('README.md lists every code, once, and no other', async (t) => {
  const listed = listedCodes();
  t.ok(listed.length > 0, 'README.md has a table under "## Errors"');
  t.same([...listed].sort(), [...errors.errorCodes].sort(), 'the codes listed are the codes defined');
  t.same(listed, [...new Set(listed)], 'each is listed once');
  const mentioned = new Set(readme.match(CODE));
  for (const code of mentioned) t.ok(errors.errorCodes.includes(code), `${code}, mentioned in README.md, exists`);
});
