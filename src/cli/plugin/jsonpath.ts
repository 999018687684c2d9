/**
 * `-o jsonpath=TEMPLATE` in kubectl's dialect (k8s.io/client-go/util/jsonpath),
 * the subset kubectl users use: text with `{...}` actions; paths from the
 * root (`.`, `$`) or, inside `{range}`, from the current item (`.`, `@`);
 * fields `.a.b` and `['a.b']`, `[*]` and `.*`, indexes `[0]` `[-1]`, slices
 * `[1:3]`, recursive `..name`, filters `[?(@.a=="x")]` (==, !=, <, <=, >, >=,
 * or existence `[?(@.a)]`); `{range PATH}...{end}`; string literals
 * `{"\n"}`. Several results of one action are joined by a space; maps and
 * lists print as JSON; a missing field prints nothing (kubectl's default
 * --allow-missing-template-keys=true). No npm library implements this
 * dialect (its range/end and literals are kubectl's own), hence this module.
 *
 * @example
 *   renderJsonPath('{range .items[*]}{.metadata.name}{"\n"}{end}', list)
 */
import { PluginUsageError } from '../../client/errors.ts';

type Literal = string | number | boolean | null;
type Segment =
  | { kind: 'field'; name: string }
  | { kind: 'wildcard' }
  | { kind: 'index'; index: number }
  | { kind: 'slice'; start: number | undefined; end: number | undefined }
  | { kind: 'recursive'; name: string }
  | { kind: 'filter'; path: Path; op: string | undefined; value: Literal };
/** `fromRoot`: written with `$`, so it starts at the root even inside a range. */
interface Path { fromRoot: boolean; segments: Segment[] }
type Node =
  | { kind: 'text'; text: string }
  | { kind: 'path'; path: Path }
  | { kind: 'range'; path: Path; body: Node[] };

function fail(template: string, why: string): never {
  throw new PluginUsageError(`-o jsonpath: ${why} in template ${JSON.stringify(template)}`);
}

/** The template's actions: the text between `{` and its `}` (quotes may hold braces). */
function actions(template: string): { text: string; action?: string }[] {
  const out: { text: string; action?: string }[] = [];
  let text = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if (c !== '{') { text += c; continue; }
    let j = i + 1;
    let quote: string | undefined;
    for (; j < template.length; j++) {
      const d = template[j]!;
      if (quote) {
        if (d === '\\') j++;
        else if (d === quote) quote = undefined;
      } else if (d === '"' || d === "'") {
        quote = d;
      } else if (d === '}') {
        break;
      }
    }
    if (j >= template.length) fail(template, 'unclosed {');
    out.push({ text, action: template.slice(i + 1, j).trim() });
    text = '';
    i = j;
  }
  if (text !== '') out.push({ text });
  return out;
}

function literal(template: string, s: string): Literal {
  if (/^"(?:[^"\\]|\\.)*"$/.test(s)) return JSON.parse(s) as string;
  if (/^'[^']*'$/.test(s)) return s.slice(1, -1);
  if (/^-?\d+(?:\.\d+)?$/.test(s)) return Number(s);
  if (s === 'true' || s === 'false') return s === 'true';
  if (s === 'null') return null;
  return fail(template, `${JSON.stringify(s)} is not a literal`);
}

function parsePath(template: string, text: string): Path {
  let i = 0;
  let fromRoot = false;
  if (text[0] === '$') { fromRoot = true; i = 1; } else if (text[0] === '@') { i = 1; }
  const segments: Segment[] = [];
  while (i < text.length) {
    if (text.startsWith('..', i)) {
      const m = /^[^.[\]]+/.exec(text.slice(i + 2));
      if (!m) fail(template, 'a name must follow ..');
      segments.push({ kind: 'recursive', name: m[0] });
      i += 2 + m[0].length;
    } else if (text[i] === '.') {
      const m = /^[^.[\]]*/.exec(text.slice(i + 1))!;
      if (m[0] === '*') segments.push({ kind: 'wildcard' });
      else if (m[0] !== '') segments.push({ kind: 'field', name: m[0] });
      i += 1 + m[0].length;
    } else if (text[i] === '[') {
      const close = bracketEnd(template, text, i);
      segments.push(bracket(template, text.slice(i + 1, close).trim()));
      i = close + 1;
    } else {
      // kubectl takes a bare first name as a field too: {items[0]} is {.items[0]}.
      const m = /^[^.[\]]+/.exec(text.slice(i))!;
      segments.push({ kind: 'field', name: m[0] });
      i += m[0].length;
    }
  }
  return { fromRoot, segments };
}

/** The index of the `]` that closes the `[` at `open`, past quotes and nested brackets. */
function bracketEnd(template: string, text: string, open: number): number {
  let depth = 0;
  let quote: string | undefined;
  for (let j = open; j < text.length; j++) {
    const d = text[j]!;
    if (quote) { if (d === quote) quote = undefined; continue; }
    if (d === '"' || d === "'") quote = d;
    else if (d === '[') depth++;
    else if (d === ']' && --depth === 0) return j;
  }
  return fail(template, 'unclosed [');
}

function bracket(template: string, inner: string): Segment {
  if (inner === '*') return { kind: 'wildcard' };
  if (/^-?\d+$/.test(inner)) return { kind: 'index', index: Number(inner) };
  const slice = /^(-?\d+)?:(-?\d+)?$/.exec(inner);
  if (slice) return { kind: 'slice', start: slice[1] === undefined ? undefined : Number(slice[1]), end: slice[2] === undefined ? undefined : Number(slice[2]) };
  if (/^'[^']*'$|^"[^"]*"$/.test(inner)) return { kind: 'field', name: inner.slice(1, -1) };
  const filter = /^\?\((.*)\)$/.exec(inner);
  if (filter) {
    const m = /^(.*?)\s*(==|!=|<=|>=|<|>)\s*(.*)$/.exec(filter[1]!.trim());
    if (!m) return { kind: 'filter', path: parsePath(template, filter[1]!.trim()), op: undefined, value: null };
    return { kind: 'filter', path: parsePath(template, m[1]!), op: m[2]!, value: literal(template, m[3]!.trim()) };
  }
  return fail(template, `[${inner}] is not supported`);
}

/** Parses a template into its nodes; every mistake is a PluginUsageError. */
export function parseJsonPath(template: string): Node[] {
  const root: Node[] = [];
  const stack: Node[][] = [root];
  for (const { text, action } of actions(template)) {
    const into = stack[stack.length - 1]!;
    if (text !== '') into.push({ kind: 'text', text });
    if (action === undefined || action === '') continue;
    if (action === 'end') {
      if (stack.length === 1) fail(template, '{end} without {range}');
      stack.pop();
    } else if (action.startsWith('range ')) {
      const node: Node = { kind: 'range', path: parsePath(template, action.slice(6).trim()), body: [] };
      into.push(node);
      stack.push(node.body);
    } else if (/^["']/.test(action)) {
      into.push({ kind: 'text', text: String(literal(template, action)) });
    } else {
      into.push({ kind: 'path', path: parsePath(template, action) });
    }
  }
  if (stack.length > 1) fail(template, '{range} without {end}');
  return root;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function children(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  return isObject(v) ? Object.values(v) : [];
}

function descendants(v: unknown, name: string): unknown[] {
  const out: unknown[] = [];
  if (isObject(v) && name in v) out.push(v[name]);
  for (const c of children(v)) out.push(...descendants(c, name));
  return out;
}

function compare(a: unknown, op: string, b: Literal): boolean {
  switch (op) {
    case '==': return a === b;
    case '!=': return a !== b;
    case '<': return typeof a === typeof b && (a as number) < (b as number);
    case '<=': return typeof a === typeof b && (a as number) <= (b as number);
    case '>': return typeof a === typeof b && (a as number) > (b as number);
    default: return typeof a === typeof b && (a as number) >= (b as number);
  }
}

function step(values: unknown[], seg: Segment, root: unknown): unknown[] {
  const out: unknown[] = [];
  for (const v of values) {
    switch (seg.kind) {
      case 'field': if (isObject(v) && v[seg.name] !== undefined) out.push(v[seg.name]); break;
      case 'wildcard': out.push(...children(v)); break;
      case 'index':
        if (Array.isArray(v)) {
          const i = seg.index < 0 ? v.length + seg.index : seg.index;
          if (i >= 0 && i < v.length) out.push(v[i]);
        }
        break;
      case 'slice': if (Array.isArray(v)) out.push(...(v as unknown[]).slice(seg.start, seg.end)); break;
      case 'recursive': out.push(...descendants(v, seg.name)); break;
      case 'filter':
        for (const item of children(v)) {
          const found = evaluate(seg.path, item, root);
          if (seg.op === undefined ? found.length > 0 : found.some((f) => compare(f, seg.op!, seg.value))) out.push(item);
        }
        break;
    }
  }
  return out;
}

function evaluate(path: Path, current: unknown, root: unknown): unknown[] {
  let values = [path.fromRoot ? root : current];
  for (const seg of path.segments) values = step(values, seg, root);
  return values;
}

function show(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function render(nodes: Node[], current: unknown, root: unknown): string {
  let out = '';
  for (const n of nodes) {
    if (n.kind === 'text') out += n.text;
    else if (n.kind === 'path') out += evaluate(n.path, current, root).map(show).join(' ');
    else {
      // {range .items[*]} iterates the items; {range .items} (one list) does the same, as in kubectl.
      let items = evaluate(n.path, current, root);
      if (items.length === 1 && Array.isArray(items[0])) items = items[0] as unknown[];
      for (const item of items) out += render(n.body, item, root);
    }
  }
  return out;
}

/** The template applied to `data` (the object as -o json prints it). */
export function renderJsonPath(template: string, data: unknown): string {
  return render(parseJsonPath(template), data, data);
}
