import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';

// The shape of the source tree: no import cycle (type-only imports count), small files, and a wire
// contract that depends on neither thread's side.
const root = new URL('../..', import.meta.url).pathname;
const MAX_LINES = 400;

function sources(dir: string): string[] {
  return fs.readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const relative = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(relative);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [relative] : [];
  });
}

const files = [...sources('lib'), ...sources('plugins')];
const importPattern =
  /^\s*(?:import|export)\s[^'"]*?from\s+'(\.[^']+)'|^\s*import\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)|typeof import\('(\.[^']+)'\)/gm;

function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  const found: string[] = [];
  for (const match of text.matchAll(importPattern)) {
    const specifier = match[1] ?? match[2] ?? match[3] ?? match[4];
    if (specifier) found.push(path.normalize(path.join(path.dirname(file), specifier)).replace(/\.js$/, '.ts'));
  }
  return found;
}

const graph = new Map(files.map((file) => [file, importsOf(file)]));

t.test('every relative import names a source file', async (t) => {
  const missing = [...graph].flatMap(([file, targets]) =>
    targets.filter((target) => !graph.has(target)).map((target) => `${file} → ${target}`),
  );
  t.same(missing, []);
});

t.test('no import cycle, type-only imports included', async (t) => {
  const cycles: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'visiting');
    stack.push(file);
    for (const target of graph.get(file) ?? []) {
      if (state.get(target) === 'visiting') cycles.push([...stack.slice(stack.indexOf(target)), target].join(' → '));
      else if (!state.has(target) && graph.has(target)) visit(target);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  t.same(cycles, []);
});

t.test(`no source file over ${MAX_LINES} lines`, async (t) => {
  const long = files
    .map((file) => ({ file, lines: fs.readFileSync(path.join(root, file), 'utf8').split('\n').length }))
    .filter(({ lines }) => lines > MAX_LINES)
    .map(({ file, lines }) => `${file}: ${lines}`);
  t.same(long, []);
});

t.test('lib/protocol imports nothing from either side', async (t) => {
  const leaks = [...graph]
    .filter(([file]) => file.startsWith('lib/protocol/'))
    .flatMap(([file, targets]) =>
      targets.filter((target) => !target.startsWith('lib/protocol/')).map((target) => `${file} → ${target}`),
    );
  t.same(leaks, []);
});

t.test('the worker side does not load the main thread, nor the main thread the worker side', async (t) => {
  const crossings = [...graph].flatMap(([file, targets]) => {
    const side =
      file.startsWith('lib/main/') || file.endsWith('/main.ts')
        ? 'main'
        : file.startsWith('lib/worker/') || file.endsWith('/worker.ts')
          ? 'worker'
          : undefined;
    if (!side) return [];
    const other = side === 'main' ? ['lib/worker/', '/worker.ts'] : ['lib/main/', '/main.ts'];
    return targets
      .filter((target) =>
        other.some((mark) => (mark.startsWith('lib/') ? target.startsWith(mark) : target.endsWith(mark))),
      )
      .map((target) => `${file} → ${target}`);
  });
  t.same(crossings, []);
});
