/**
 * The compile-time cost estimate of a FederatedCredential's `claims`
 * expression: an upper bound of the work one evaluation can do, computed
 * from the parsed expression alone, the way Kubernetes bounds CEL in CRD
 * validation rules and admission policies (cel-go's checker/cost.go).
 *
 * The model, in cel-go's units: reading a variable, a field or an index
 * costs 1; a constant costs 0; creating a list costs 10 and a map 30, plus
 * their elements; a function or operator costs 1 plus its arguments plus
 * one tenth of the size of the strings or lists it traverses (cel-go's
 * traversal factor 0.1); `contains` and `indexOf` multiply the two sizes;
 * `matches` costs, per character of the string, a quarter unit plus a
 * twentieth per instruction of the pattern's compiled RE2 program (RE2
 * runs in time linear in both; cel-go counts the pattern's length instead,
 * but a short pattern such as `(a?){1000}` compiles to thousands of
 * instructions, and re2js's slowest path, its NFA, costs about a
 * nanosecond per character and instruction); a comprehension
 * (`all`, `exists`, `exists_one`, `map`, `filter`) costs its range plus the
 * range's size times the cost of one step. `&&`, `||` and `?:` count both
 * sides (a bound, not a guess).
 *
 * Sizes are upper bounds too. A literal has its own size; anything read
 * from `claims` is bounded by the largest claims an external token can
 * carry (MAX_CLAIMS_JSON_BYTES: the token server refuses longer subject
 * tokens before any of this runs), as a string of that many characters or
 * a list of that many elements, each of them as large again: the
 * conservative reading, since an estimate must never be below the truth.
 */
import type { ASTNode } from '@marcbachmann/cel-js';

/** An upper bound of a value's size: characters of a string, elements of a list or map. */
export interface Size {
  readonly max: number;
  /** The bound of each element (list values, map values), when it is a collection. */
  readonly elem?: Size;
  /** All characters or scalars inside it, nested collections included. */
  readonly flat: number;
  /**
   * Its elements share `flat` between them (a value decoded from JSON of
   * bounded size) instead of each having it: iterating it costs at most one
   * step over an element of the whole size plus one over a tiny element for
   * each of the others, since a step's cost grows at least linearly with
   * its element's size (sums and products of sizes).
   */
  readonly shared?: boolean;
}

export interface CostEstimate {
  cost: number;
  size: Size;
}

/** cel-go: common.StringTraversalCostFactor. */
export const TRAVERSAL_FACTOR = 0.1;
/** Units per character of the subject, and per character and instruction of the RE2 program (see the header). */
export const REGEX_CHAR_FACTOR = 0.25;
export const REGEX_INSTRUCTION_FACTOR = 0.05;

/** The cost of matching a string of `length` against an RE2 program of `programSize` instructions. */
export const regexCost = (length: number, programSize: number) =>
  Math.ceil(length * (REGEX_CHAR_FACTOR + REGEX_INSTRUCTION_FACTOR * programSize));
const LIST_CREATE = 10;
const MAP_CREATE = 30;

const SCALAR: Size = { max: 1, flat: 1 };
/** An element of a shared collection other than its largest: a character or a scalar. */
const TINY: Size = { max: 1, flat: 2 };
const cap = (n: number) => Math.min(n, Number.MAX_SAFE_INTEGER);
const ofString = (n: number): Size => ({ max: n, flat: n });
const ofList = (n: number, elem: Size): Size => ({ max: n, elem, flat: cap(n * elem.flat) });

/**
 * A value of unknown shape decoded from at most `flat` bytes of JSON: a
 * string of up to that many characters, or a collection of up to half as
 * many elements (each takes a byte and a separator), each as large again.
 */
export function anyValue(flat: number): Size {
  const s: { max: number; flat: number; elem?: Size; shared: boolean } = { max: Math.ceil(flat / 2), flat, shared: true };
  s.elem = s;
  return s;
}

/** ceil(size x 0.1): what traversing a value of that size costs. */
export const traversal = (n: number) => Math.ceil(n * TRAVERSAL_FACTOR);

const larger = (a: Size, b: Size): Size => (a.flat >= b.flat && a.max >= b.max ? a : b.flat >= a.flat && b.max >= a.max ? b
  : { max: Math.max(a.max, b.max), elem: a.elem && b.elem ? larger(a.elem, b.elem) : (a.elem ?? b.elem), flat: Math.max(a.flat, b.flat) });

/** The name claims-expression.ts gives `matches` once it points it at RE2. */
export const RE2_MATCHES = 'matches#re2';

const MACROS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);
/** String functions that look for their argument in the receiver: the two sizes multiply. */
const SEARCHING = new Set(['contains', 'indexOf', 'lastIndexOf']);
/** Functions whose result is as large as their receiver (or first argument). */
const SAME_SIZE = new Set(['lowerAscii', 'upperAscii', 'trim', 'substring', 'dyn', 'replace']);

type Scope = ReadonlyMap<string, Size>;

class Estimator {
  private readonly variables: Scope;
  private readonly programSize: (pattern: string) => number;

  constructor(variables: Scope, programSize: (pattern: string) => number) {
    this.variables = variables;
    this.programSize = programSize;
  }

  estimate(node: ASTNode, scope: Scope): CostEstimate {
    switch (node.op) {
      case 'value': {
        const v = node.args;
        return { cost: 0, size: typeof v === 'string' ? ofString(v.length) : v instanceof Uint8Array ? ofString(v.length) : SCALAR };
      }
      case 'id':
        return { cost: 1, size: scope.get(node.args) ?? this.variables.get(node.args) ?? SCALAR };
      case '.':
      case '.?': {
        const operand = this.estimate(node.args[0], scope);
        return { cost: cap(1 + operand.cost), size: operand.size.elem ?? operand.size };
      }
      case '[]':
      case '[?]': {
        const [a, b] = [this.estimate(node.args[0], scope), this.estimate(node.args[1], scope)];
        return { cost: cap(1 + a.cost + b.cost), size: a.size.elem ?? a.size };
      }
      case 'list': {
        const items = node.args.map((n) => this.estimate(n, scope));
        const elem = items.reduce<Size>((s, i) => larger(s, i.size), { max: 0, flat: 0 });
        return { cost: cap(LIST_CREATE + sum(items)), size: ofList(items.length, elem) };
      }
      case 'map': {
        const entries = node.args.flatMap(([k, v]) => [this.estimate(k, scope), this.estimate(v, scope)]);
        // Iterating a map yields its keys, indexing it its values: an element is as large as either.
        const elem = entries.reduce<Size>((s, i) => larger(s, i.size), { max: 0, flat: 0 });
        return { cost: cap(MAP_CREATE + sum(entries)), size: ofList(node.args.length, elem) };
      }
      case '?:': {
        const [c, a, b] = node.args.map((n) => this.estimate(n, scope)) as [CostEstimate, CostEstimate, CostEstimate];
        return { cost: cap(c.cost + Math.max(a.cost, b.cost)), size: larger(a.size, b.size) };
      }
      case '||':
      case '&&': {
        const [a, b] = [this.estimate(node.args[0], scope), this.estimate(node.args[1], scope)];
        return { cost: cap(a.cost + b.cost), size: SCALAR };
      }
      case '!_':
      case '-_': {
        const a = this.estimate(node.args, scope);
        return { cost: cap(1 + a.cost), size: SCALAR };
      }
      case 'call':
        return this.call(node.args[0], undefined, node.args[1], scope);
      case 'rcall':
        return this.call(node.args[0], node.args[1], node.args[2], scope);
      default:
        return this.binary(node, scope);
    }
  }

  private binary(node: ASTNode, scope: Scope): CostEstimate {
    const args = node.args as unknown as [ASTNode, ASTNode];
    const [l, r] = [this.estimate(args[0], scope), this.estimate(args[1], scope)];
    const base = 1 + l.cost + r.cost;
    switch (node.op) {
      case '+':
        return {
          cost: cap(base + traversal(l.size.flat + r.size.flat)),
          size: { max: cap(l.size.max + r.size.max), elem: l.size.elem && r.size.elem ? larger(l.size.elem, r.size.elem) : undefined,
            flat: cap(l.size.flat + r.size.flat) },
        };
      case 'in':
        // Each element of the right side compared with the left one.
        return { cost: cap(base + r.size.max * (1 + traversal(l.size.flat))), size: SCALAR };
      case '==': case '!=': case '<': case '<=': case '>': case '>=':
        return { cost: cap(base + traversal(Math.min(l.size.flat, r.size.flat))), size: SCALAR };
      default:
        return { cost: cap(base), size: SCALAR };
    }
  }

  private call(name: string, receiver: ASTNode | undefined, argNodes: readonly ASTNode[], scope: Scope): CostEstimate {
    if (receiver && MACROS.has(name) && argNodes.length >= 2 && argNodes[0]!.op === 'id') {
      return this.comprehension(name, receiver, argNodes, scope);
    }
    if (!receiver && name === 'has') {
      return { cost: cap(1 + sum(argNodes.map((a) => this.estimate(a, scope)))), size: SCALAR };
    }
    const all = (receiver ? [receiver, ...argNodes] : [...argNodes]).map((a) => this.estimate(a, scope));
    const base = 1 + sum(all);
    const subject = all[0]?.size ?? SCALAR;
    const arg = all[1]?.size ?? SCALAR;
    if (name === 'matches' || name === RE2_MATCHES) {
      const pattern = receiver ? argNodes[0] : argNodes[1];
      const program = pattern?.op === 'value' && typeof pattern.args === 'string' ? this.programSize(pattern.args) : arg.flat;
      return { cost: cap(base + regexCost(subject.flat, program)), size: SCALAR };
    }
    if (SEARCHING.has(name)) return { cost: cap(base + traversal(subject.flat) * traversal(arg.flat)), size: SCALAR };
    if (name === 'size') return { cost: cap(base), size: SCALAR };
    if (name === 'split') return { cost: cap(base + traversal(subject.flat)), size: ofList(subject.flat, subject) };
    const traversed = traversal(all.reduce((n, a) => n + a.size.flat, 0));
    if (name === 'join') return { cost: cap(base + traversed), size: ofString(cap(subject.flat + subject.max * arg.flat)) };
    // A number or a bool written out is up to 32 characters (a double's shortest form is at most 24).
    if (name === 'string' || name === 'bytes') return { cost: cap(base + traversed), size: ofString(Math.max(subject.flat, 32)) };
    if (SAME_SIZE.has(name)) return { cost: cap(base + traversed), size: subject };
    if (['startsWith', 'endsWith'].includes(name)) return { cost: cap(base + traversal(arg.flat)), size: SCALAR };
    // Any other function: it may read all of its arguments, and make something as large.
    return { cost: cap(base + traversed), size: anyValue(Math.max(1, all.reduce((n, a) => n + a.size.flat, 0))) };
  }

  private comprehension(name: string, receiver: ASTNode, argNodes: readonly ASTNode[], scope: Scope): CostEstimate {
    const range = this.estimate(receiver, scope);
    const variable = argNodes[0]!.args as string;
    // One iteration: its steps plus the loop's own bookkeeping (cel-go counts the condition and the step).
    const iteration = (elem: Size) => {
      const steps = argNodes.slice(1).map((a) => this.estimate(a, new Map(scope).set(variable, elem)));
      return { cost: 1 + sum(steps), size: steps.at(-1)!.size };
    };
    const elem = range.size.elem ?? range.size;
    const whole = iteration(elem);
    const loop = range.size.shared && range.size.max > 1
      ? whole.cost + (range.size.max - 1) * iteration(TINY).cost
      : range.size.max * whole.cost;
    const cost = cap(range.cost + loop);
    if (name === 'map') return { cost, size: ofList(range.size.max, whole.size) };
    if (name === 'filter') return { cost, size: ofList(range.size.max, range.size.elem ?? range.size) };
    return { cost, size: SCALAR };
  }
}

const sum = (xs: readonly CostEstimate[]) => cap(xs.reduce((n, x) => n + x.cost, 0));

/**
 * The estimated cost of `ast` given upper bounds of its variables, and the
 * size of the RE2 program of each literal pattern of `matches`.
 */
export function estimateCost(ast: ASTNode, variables: ReadonlyMap<string, Size>, programSize: (pattern: string) => number): CostEstimate {
  return new Estimator(variables, programSize).estimate(ast, new Map());
}
