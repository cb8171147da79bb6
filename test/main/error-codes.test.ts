// lib/errors.ts is the registry of coded errors; docs/Reference/Errors.md's table lists each of its codes,
// and the documentation mentions no other.
import fs from 'node:fs';
import t from 'tap';

const errors = (await import(
  new URL('../../dist/lib/errors.js', import.meta.url).href
)) as typeof import('../../lib/errors.ts');
const root = new URL('../../', import.meta.url);
const read = (file: string): string => fs.readFileSync(new URL(file, root), 'utf8');
const errorsPage = read('docs/Reference/Errors.md');
/** README.md and every page under docs/. */
const documentation = [
  'README.md',
  ...fs
    .readdirSync(new URL('docs/', root), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.md'))
    .map((file) => `docs/${file}`),
];
const CODE = /SOCKETNAUT_ERR_[A-Z0-9_]+/g;

/** The codes in the first column of the table under "# Errors". */
function listedCodes(): string[] {
  const lines = errorsPage.split('\n');
  const at = lines.indexOf('# Errors');
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

t.test('docs/Reference/Errors.md lists every code, once, and no other', async (t) => {
  const listed = listedCodes();
  t.ok(listed.length > 0, 'docs/Reference/Errors.md has a table under "# Errors"');
  t.same([...listed].sort(), [...errors.errorCodes].sort(), 'the codes listed are the codes defined');
  t.same(listed, [...new Set(listed)], 'each is listed once');
});

t.test('every code the documentation mentions exists', async (t) => {
  t.ok(documentation.length > 2, 'README.md and the pages under docs/ are read');
  for (const file of documentation) {
    for (const code of new Set(read(file).match(CODE)))
      t.ok(errors.errorCodes.includes(code), `${code}, mentioned in ${file}, exists`);
  }
});
