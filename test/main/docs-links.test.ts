// Every relative link of the documentation (README.md, docs/, the examples' READMEs) points at a file or
// directory that exists, and an anchor at a heading of its page as GitHub names it; every page under docs/
// is linked from both indexes.
import fs from 'node:fs';
import path from 'node:path';
import GithubSlugger from 'github-slugger';
import { marked, type Token, type Tokens } from 'marked';
import t from 'tap';

const root = path.resolve(new URL('../..', import.meta.url).pathname);

function markdownUnder(dir: string): string[] {
  return fs
    .readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.md'))
    .map((file) => path.join(dir, file))
    .sort();
}

const docsPages = markdownUnder('docs');
const examplePages = fs
  .readdirSync(path.join(root, 'example-apps'))
  .map((name) => path.join('example-apps', name, 'README.md'))
  .filter((file) => fs.existsSync(path.join(root, file)));
const pages = ['README.md', ...docsPages, ...examplePages];

const tokensOf = new Map<string, Token[]>();
function tokens(file: string): Token[] {
  let found = tokensOf.get(file);
  if (!found) {
    found = marked.lexer(fs.readFileSync(path.join(root, file), 'utf8'));
    tokensOf.set(file, found);
  }
  return found;
}

/** The text a heading shows: its code spans' contents, its links' texts, without emphasis marks. */
function shownText(inline: Token[]): string {
  return inline.map((token) => ('tokens' in token && token.tokens ? shownText(token.tokens) : token.raw)).join('');
}

/** The anchors GitHub gives the headings of `file`. */
function anchors(file: string): Set<string> {
  const slugger = new GithubSlugger();
  const found = new Set<string>();
  marked.walkTokens(tokens(file), (token) => {
    if (token.type === 'heading') found.add(slugger.slug(shownText((token as Tokens.Heading).tokens)));
  });
  return found;
}

/** The targets of the links and images of `file` that are neither URLs with a scheme nor protocol-relative. */
function localLinks(file: string): string[] {
  const hrefs: string[] = [];
  marked.walkTokens(tokens(file), (token) => {
    if (token.type === 'link' || token.type === 'image') hrefs.push((token as Tokens.Link | Tokens.Image).href);
  });
  return hrefs.filter((href) => !/^[a-z][a-z0-9+.-]*:/i.test(href) && !href.startsWith('//'));
}

/** Why `href`, linked from `file`, points at nothing, or undefined when it points at something. */
function brokenBecause(file: string, href: string): string | undefined {
  const hash = href.indexOf('#');
  const target = decodeURIComponent(hash === -1 ? href : href.slice(0, hash));
  const anchor = hash === -1 ? undefined : decodeURIComponent(href.slice(hash + 1));
  const resolved = target === '' ? file : path.relative(root, path.resolve(root, path.dirname(file), target));
  if (resolved.startsWith('..')) return `${resolved} is outside the repository`;
  if (!fs.existsSync(path.join(root, resolved))) return `${resolved} does not exist`;
  if (anchor === undefined) return undefined;
  if (!resolved.endsWith('.md')) return `#${anchor} is in ${resolved}, which has no headings`;
  return anchors(resolved).has(anchor) ? undefined : `${resolved} has no heading #${anchor}`;
}

t.test('the pages looked at', async (t) => {
  t.ok(docsPages.includes(path.join('docs', 'README.md')), 'docs/README.md');
  t.ok(
    docsPages.some((file) => file.startsWith(path.join('docs', 'Reference'))),
    'docs/Reference',
  );
  t.ok(
    docsPages.some((file) => file.startsWith(path.join('docs', 'Guides'))),
    'docs/Guides',
  );
  t.ok(examplePages.length > 0, "the examples' READMEs");
});

t.test('GitHub names a heading as these checks expect', async (t) => {
  const slugger = new GithubSlugger();
  const heading = (text: string): string =>
    slugger.slug(shownText((marked.lexer(`## ${text}`)[0] as Tokens.Heading).tokens));
  t.equal(heading('`createServiceProxy(options)` → `ServiceProxy`'), 'createserviceproxyoptions--serviceproxy');
  t.equal(heading('Worker health: stalls, memory and probes'), 'worker-health-stalls-memory-and-probes');
  t.equal(heading('A [linked](x.md) **bold** heading'), 'a-linked-bold-heading');
  t.equal(heading('Signals'), 'signals');
  t.equal(heading('Signals'), 'signals-1', 'a second heading of the same text');
});

for (const file of pages) {
  t.test(`${file}: every relative link points at something`, async (t) => {
    const links = localLinks(file);
    const broken = links.flatMap((href) => {
      const because = brokenBecause(file, href);
      return because ? [`${href}: ${because}`] : [];
    });
    t.same(broken, [], `${links.length} links`);
  });
}

t.test('every page under docs/ is linked from README.md and from docs/README.md', async (t) => {
  for (const index of ['README.md', path.join('docs', 'README.md')]) {
    const linked = new Set(
      localLinks(index).map((href) =>
        path.relative(root, path.resolve(root, path.dirname(index), decodeURIComponent(href.split('#')[0]!))),
      ),
    );
    const missing = docsPages.filter((page) => page !== index && !linked.has(page));
    t.same(missing, [], `${index} links every page`);
  }
});
