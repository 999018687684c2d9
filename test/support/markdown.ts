/**
 * What the manual's pages say about the repository, read as GitHub reads them: their links (and
 * the heading anchors GitHub makes), and the repository paths and npm scripts their command blocks
 * and inline code name. No network: an http(s) link is not followed.
 *
 * Anchors follow GitHub's slug rules: the heading's rendered text (code spans keep their text,
 * links their label, emphasis markers go), lower-cased, every character that is not a letter, a
 * number, a combining mark, `_`, `-` or a space dropped, spaces made `-`, and a repeated slug
 * numbered `-1`, `-2`, ... in order. An HTML `id="..."` or `name="..."` is an anchor too.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, sep } from 'node:path';

/** The pages checked: README.md, every Markdown file below docs/ (tracked or not), and the chart's and the token benchmark's READMEs. */
export function manualPages(root: string): string[] {
  const pages = ['README.md'];
  const walk = (dir: string): void => {
    for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.md')) pages.push(p);
    }
  };
  if (existsSync(join(root, 'docs'))) walk('docs');
  for (const p of ['charts/apikey-operator/README.md', 'bench/token-endpoint/README.md']) if (existsSync(join(root, p))) pages.push(p);
  return pages.sort();
}

export interface Line { text: string; line: number }

/** A page split into prose lines and fenced code blocks (with their info string). */
export function splitFences(text: string): { prose: Line[]; blocks: { lang: string; lines: Line[] }[] } {
  const prose: Line[] = [];
  const blocks: { lang: string; lines: Line[] }[] = [];
  let open: { fence: string; lang: string; lines: Line[] } | undefined;
  text.split('\n').forEach((t, i) => {
    const line = i + 1;
    const m = /^ {0,3}(`{3,}|~{3,})\s*([\w+-]*)/.exec(t);
    if (open) {
      if (m && m[1]!.startsWith(open.fence[0]!) && m[1]!.length >= open.fence.length && t.trim() === m[1]) {
        blocks.push({ lang: open.lang, lines: open.lines });
        open = undefined;
      } else open.lines.push({ text: t, line });
    } else if (m) open = { fence: m[1]!, lang: m[2]!.toLowerCase(), lines: [] };
    else prose.push({ text: t, line });
  });
  if (open) blocks.push({ lang: open.lang, lines: open.lines });
  return { prose, blocks };
}

/** GitHub's anchor for a heading's Markdown text (without the slug numbering). */
export function githubSlug(heading: string): string {
  const rendered = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/`([^`]*)`/g, '$1')
    .replace(/\*\*|__|\*/g, '');
  return rendered.trim().toLowerCase().replace(/[^\p{L}\p{N}\p{M}\p{Pc}\- ]/gu, '').replace(/ /g, '-');
}

/** Every anchor a page offers. */
export function anchorsOf(text: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const { text: t } of splitFences(text).prose) {
    const h = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(t);
    if (h) {
      const base = githubSlug(h[1]!);
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      anchors.add(n === 0 ? base : `${base}-${n}`);
    }
    for (const m of t.matchAll(/<a\s[^>]*(?:id|name)="([^"]+)"/g)) anchors.add(m[1]!);
  }
  return anchors;
}

export interface Link { target: string; line: number }

/** Inline links and images, and reference definitions, outside code (fenced blocks and code spans). */
export function linksOf(text: string): Link[] {
  const links: Link[] = [];
  for (const { text: t, line } of splitFences(text).prose) {
    const bare = t.replace(/`[^`]*`/g, (s) => ' '.repeat(s.length));
    for (const m of bare.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) links.push({ target: m[1]!, line });
    const def = /^ {0,3}\[[^\]]+\]:\s+<?(\S+?)>?(?:\s|$)/.exec(bare);
    if (def) links.push({ target: def[1]!, line });
  }
  return links;
}

/** Top-level folders whose paths a page may name in code: `manifests/examples/x.yaml`. */
const PATH_ROOTS = ['manifests', 'charts', 'crds', 'scripts', 'bench', 'test', 'src', 'docs', 'plugins', '.ci'];
const PATH_RE = new RegExp(`(?<![\\w./$-])((?:${PATH_ROOTS.map((r) => r.replace('.', '\\.')).join('|')})/[\\w.*/{},-]*[\\w*}/])`, 'g');

/** Repository paths named in command blocks and code spans, with the npm scripts command blocks run. */
export function namedPaths(text: string): { paths: Link[]; scripts: Link[] } {
  const { prose, blocks } = splitFences(text);
  const paths: Link[] = [];
  const scripts: Link[] = [];
  const commandLangs = new Set(['sh', 'bash', 'shell', 'console', 'text', '']);
  for (const b of blocks.filter((b) => commandLangs.has(b.lang))) {
    for (const { text: t, line } of b.lines) {
      const code = t.replace(/(^|\s)#\s.*$/, '');
      for (const m of code.matchAll(PATH_RE)) paths.push({ target: m[1]!, line });
      for (const m of code.matchAll(/\bnpm run ([\w:-]+)/g)) scripts.push({ target: m[1]!, line });
    }
  }
  for (const { text: t, line } of prose) {
    for (const span of t.matchAll(/`([^`]+)`/g)) {
      for (const m of span[1]!.matchAll(PATH_RE)) paths.push({ target: m[1]!, line });
      for (const m of span[1]!.matchAll(/\bnpm run ([\w:-]+)/g)) scripts.push({ target: m[1]!, line });
    }
  }
  return { paths, scripts };
}

/** The repository's files: tracked ones, and new ones not ignored. */
export function repositoryFiles(root: string): string[] {
  return execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' })
    .split('\0').filter(Boolean);
}

/** Whether `pattern` (a path, perhaps with `*`, `**` or `{a,b}`) names a file or folder of `files`. */
export function pathExists(pattern: string, files: string[]): boolean {
  const p = pattern.replace(/\/$/, '');
  if (!/[*{]/.test(p)) return files.some((f) => f === p || f.startsWith(`${p}/`));
  const re = new RegExp(`^${p
    .replace(/[.+^$()|[\]\\]/g, '\\$&')
    .replace(/\{([^}]*)\}/g, (_, alts: string) => `(?:${alts.split(',').join('|')})`)
    .replace(/\*\*\/?/g, '\uE000')
    .replace(/\*/g, '[^/]*')
    .replace(/\uE000/g, '(?:.*/)?')}(?:/.*)?$`);
  return files.some((f) => re.test(f));
}

/** Every broken link, anchor, named path or npm script of the manual, one line each: `page:line: what`. */
export function brokenReferences(root: string): string[] {
  const files = repositoryFiles(root);
  const scripts = Object.keys((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts);
  const anchorCache = new Map<string, Set<string>>();
  const anchors = (file: string): Set<string> => {
    let a = anchorCache.get(file);
    if (!a) anchorCache.set(file, a = anchorsOf(readFileSync(join(root, file), 'utf8')));
    return a;
  };
  const problems: string[] = [];
  for (const page of manualPages(root)) {
    const text = readFileSync(join(root, page), 'utf8');
    for (const { target, line } of linksOf(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
      const [path = '', anchor] = target.split('#', 2) as [string, string | undefined];
      const file = path === '' ? page : normalize(join(dirname(page), decodeURI(path))).split(sep).join('/');
      if (file.startsWith('..') || !existsSync(join(root, file))) {
        problems.push(`${page}:${line}: ${target}: no such file (${file})`);
        continue;
      }
      if (anchor !== undefined) {
        if (!file.endsWith('.md') || statSync(join(root, file)).isDirectory()) {
          problems.push(`${page}:${line}: ${target}: an anchor into a file that is not Markdown`);
        } else if (!anchors(file).has(decodeURIComponent(anchor))) {
          problems.push(`${page}:${line}: ${target}: ${file} has no heading whose anchor is #${anchor}`);
        }
      }
    }
    const named = namedPaths(text);
    for (const { target, line } of named.paths) {
      if (!pathExists(target, files)) problems.push(`${page}:${line}: ${target}: no such path in the repository`);
    }
    for (const { target, line } of named.scripts) {
      if (!scripts.includes(target)) problems.push(`${page}:${line}: npm run ${target}: package.json has no such script`);
    }
  }
  return problems;
}

