/**
 * docs/security/threat-model.md cannot drift from the tests it cites: every row of its threat tables
 * has a status; a closed row names at least one test; every test file a row names exists, and every
 * test name it quotes (in backticks, after the file) is written in that file. A quoted name may leave
 * out a part with "…" (each remaining part must appear, in order) and stands for an `it.each` name
 * with its `%s`. A row that is open must say so: a threat with no test is never listed as closed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/paths.ts';

const PAGE = 'docs/security/threat-model.md';

interface Row { line: number; cells: string[] }

/** The rows of every table whose header has a "status" column, with that column's index. */
function threatRows(text: string): { rows: Row[]; statusAt: Map<Row, number>; testAt: Map<Row, number> } {
  const rows: Row[] = [];
  const statusAt = new Map<Row, number>();
  const testAt = new Map<Row, number>();
  const lines = text.split('\n');
  let header: string[] | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (!line.startsWith('|')) {
      header = undefined;
      continue;
    }
    const cells = splitRow(line);
    if (!header) {
      header = cells.map((c) => c.toLowerCase());
      continue;
    }
    if (cells.every((c) => /^:?-+:?$/.test(c))) continue;
    const status = header.indexOf('status');
    const test = header.findIndex((h) => h.startsWith('test'));
    if (status < 0 || test < 0) continue;
    const row = { line: i + 1, cells };
    rows.push(row);
    statusAt.set(row, status);
    testAt.set(row, test);
  }
  return { rows, statusAt, testAt };
}

/** A table row's cells; `\|` inside a cell is a literal bar. */
function splitRow(line: string): string[] {
  const cells: string[] = [];
  let cur = '';
  for (let i = 1; i < line.length; i++) {
    const ch = line[i];
    if (ch === '\\' && line[i + 1] === '|') {
      cur += '|';
      i++;
    } else if (ch === '|') {
      cells.push(cur.trim());
      cur = '';
    } else {
      cur += ch;
    }
  }
  return cells;
}

/** The (file, quoted test names) pairs of a test cell: names follow the file they belong to. */
export function citedTests(cell: string): { file: string; names: string[] }[] {
  const out: { file: string; names: string[] }[] = [];
  const token = /((?:src|test)\/[\w./-]+\.test\.ts)|`([^`]+)`/g;
  for (const m of cell.matchAll(token)) {
    if (m[1]) out.push({ file: m[1], names: [] });
    else if (m[2] && out.length > 0) out.at(-1)?.names.push(m[2]);
  }
  return out;
}

/**
 * Whether the source holds the quoted name: written out ("…" skips text, `%s` stands for an it.each
 * placeholder), or as an it.each name: a string in the source with `%s`/`%i`/`%d` placeholders that
 * matches the quoted name, each placeholder's value being written in the source too.
 */
export function writtenIn(source: string, quoted: string): boolean {
  return writtenOut(source, quoted) || (!quoted.includes('…') && expandedFromTemplate(source, quoted));
}

function expandedFromTemplate(source: string, quoted: string): boolean {
  const literal = /'((?:[^'\\\n]|\\.)*%[sid](?:[^'\\\n]|\\.)*)'|"((?:[^"\\\n]|\\.)*%[sid](?:[^"\\\n]|\\.)*)"/g;
  for (const m of source.matchAll(literal)) {
    const template = (m[1] ?? m[2] ?? '').replaceAll("\\'", "'").replaceAll('\\"', '"');
    const pattern = template.split(/(%[sid])/).map((part) => (part === '%s' ? '(.+?)' : part === '%i' || part === '%d' ? '(-?\\d+)'
      : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('');
    const values = new RegExp(`^${pattern}$`).exec(quoted);
    if (values && values.slice(1).every((v) => /^-?\d+$/.test(v) || source.includes(v))) return true;
  }
  return false;
}

function writtenOut(source: string, quoted: string): boolean {
  const parts = quoted.split(/…|%s/).map((p) => p.trim()).filter((p) => p.length > 0);
  let from = 0;
  for (const part of parts) {
    // Test names are written in quotes of any kind; a quote inside one may be escaped in the source.
    const at = [part, part.replaceAll("'", "\\'")].map((p) => source.indexOf(p, from)).filter((i) => i >= 0);
    if (at.length === 0) return false;
    from = Math.min(...at) + 1;
  }
  return parts.length > 0;
}

describe('the threat model', () => {
  const text = readFileSync(join(ROOT, PAGE), 'utf8');
  const { rows, statusAt, testAt } = threatRows(text);

  it('has threat tables', () => {
    expect(rows.length).toBeGreaterThan(30);
  });

  it('gives every threat a status: closed, open or accepted', () => {
    const bad = rows.filter((r) => !/^\*{0,2}(closed|open|accepted)\b/i.test(r.cells[statusAt.get(r) ?? -1] ?? ''));
    expect(bad.map((r) => `${PAGE}:${r.line}: ${r.cells.join(' | ').slice(0, 100)}`)).toEqual([]);
  });

  it('names at least one test for every closed threat', () => {
    const bad = rows.filter((r) => /closed/i.test(r.cells[statusAt.get(r) ?? -1] ?? '')
      && citedTests(r.cells[testAt.get(r) ?? -1] ?? '').length === 0);
    expect(bad.map((r) => `${PAGE}:${r.line}`)).toEqual([]);
  });

  it('names only test files that exist, and test names written in them', () => {
    const missing: string[] = [];
    for (const r of rows) {
      for (const { file, names } of citedTests(r.cells[testAt.get(r) ?? -1] ?? '')) {
        if (!existsSync(join(ROOT, file))) {
          missing.push(`${PAGE}:${r.line}: ${file} does not exist`);
          continue;
        }
        const source = readFileSync(join(ROOT, file), 'utf8');
        for (const name of names) {
          if (!writtenIn(source, name)) missing.push(`${PAGE}:${r.line}: ${file} has no test "${name}"`);
        }
      }
    }
    expect(missing).toEqual([]);
  });

  it('reads cited tests and quoted names as intended', () => {
    expect(citedTests('src/a.test.ts: `one`; `two`; test/b.test.ts: `three` (3 tests)')).toEqual([
      { file: 'src/a.test.ts', names: ['one', 'two'] }, { file: 'test/b.test.ts', names: ['three'] },
    ]);
    expect(writtenIn("it('refuses a subject token longer than 12 KiB', ...)", 'refuses a subject token…12 KiB')).toBe(true);
    expect(writtenIn("it.each(cases)('after signing in with next=%s, the browser stays', ...)", 'after signing in with next=%s, the browser stays')).toBe(true);
    expect(writtenIn("it('refuses it')", 'accepts it')).toBe(false);
    expect(writtenIn("it('b then a')", 'a…b')).toBe(false);
    const each = "it.each([['a huge body', 413]])('%s gets a 4xx (%i), never a 5xx', ...)";
    expect(writtenIn(each, 'a huge body gets a 4xx (413), never a 5xx')).toBe(true);
    expect(writtenIn(each, 'a tiny body gets a 4xx (413), never a 5xx')).toBe(false);
  });
});
