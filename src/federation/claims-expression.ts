/**
 * The CEL expression of a FederatedCredential's spec.claims, compiled once
 * and evaluated against each external token's claims. Both programs use this
 * one compiler: the controller puts its error message into the Ready
 * condition (InvalidExpression), the token server evaluates the compiled
 * expression, so what the controller calls valid is exactly what the token
 * server runs.
 *
 * The expression sees one variable, `claims` (a map of the token's claims).
 * It matches only when it evaluates to `true`; any evaluation error (a claim
 * the token does not have, a type mismatch) is no match, never a throw.
 *
 * A namespace editor writes the expression and anyone holding a token of an
 * allowed CI issuer can make the token server evaluate it, so its work is
 * bounded three times over, the way Kubernetes bounds CEL:
 *
 *   1. parse limits (AST nodes, depth, list and map literals, arguments)
 *      and the CRD's maxLength;
 *   2. a cost estimated when it is compiled (cel-cost.ts): one whose
 *      estimate exceeds COST_LIMIT does not compile, with its estimated
 *      cost and the limit in the message (the Ready condition's
 *      InvalidExpression);
 *   3. a runtime budget: each evaluation is metered (one unit per node
 *      evaluated, plus a tenth of the size of every string or list a node
 *      makes, plus RE2's cost for `matches`, charged before it runs), and
 *      an evaluation that goes over its budget stops at once and is no
 *      match. One request's budget (RUNTIME_BUDGET) is shared by every
 *      credential it tries.
 *
 * `matches` uses RE2 (re2js), as the CEL specification says, not the
 * backtracking JavaScript RegExp: its time is linear in the subject and the
 * pattern. Its pattern must be a string literal, compiled (and refused when
 * it is not valid RE2) with the expression, never a value from the token.
 *
 * The meter relies on one detail of cel-js 8: every node below the root is
 * evaluated through the Environment's evaluator's `run(ast, ctx)`. The
 * meter replaces that method on this module's own Environment's evaluator
 * (found once, at load), so it counts every node of every expression this
 * module compiles; the unit tests prove the budget trips, so a cel-js that
 * changed this would fail them rather than run unmetered.
 *
 * @example
 *   const c = compileClaimsExpression("claims.repository == 'acme/airflow-dags'");
 *   if (c.ok) c.matches({ repository: 'acme/airflow-dags' }); // true
 */
import { Environment, type ASTNode } from '@marcbachmann/cel-js';
import { RE2JS } from 're2js';
import { anyValue, estimateCost, RE2_MATCHES, regexCost, traversal } from './cel-cost.ts';

/** The largest external token (compact JWT) the token server reads; longer ones are refused unread. */
export const MAX_EXTERNAL_TOKEN_BYTES = 12 * 1024;
/** The most its claims can hold once decoded (base64url: 3 bytes per 4 characters). */
export const MAX_CLAIMS_JSON_BYTES = Math.floor((MAX_EXTERNAL_TOKEN_BYTES * 3) / 4);
/** An expression whose estimated cost is above this does not compile. */
export const COST_LIMIT = 20_000;
/** An evaluation that has spent this much stops and is no match. */
export const RUNTIME_BUDGET = COST_LIMIT;

/** What one request may still spend on claims expressions; shared by every credential it tries. */
export interface CelBudget {
  remaining: number;
}

/** A fresh budget for one request. */
export const celBudget = (units = RUNTIME_BUDGET): CelBudget => ({ remaining: units });

export interface ClaimsMatcher {
  ok: true;
  /** The estimated cost of one evaluation (an upper bound). */
  cost: number;
  /**
   * Whether `claims` match; the evaluation spends from `budget` (default: a
   * fresh RUNTIME_BUDGET) and is no match once it is spent.
   */
  matches(claims: Readonly<Record<string, unknown>>, budget?: CelBudget): boolean;
}

export type ClaimsExpression = ClaimsMatcher | { ok: false; error: string };


const environment = new Environment({
  limits: { maxAstNodes: 512, maxDepth: 32, maxListElements: 64, maxMapEntries: 64, maxCallArguments: 8 },
}).registerVariable('claims', 'map')
  .registerFunction({
    name: RE2_MATCHES, receiverType: 'string', returnType: 'bool', params: [{ type: 'string' }], handler: re2Matches,
  })
  .registerFunction({
    name: RE2_MATCHES, returnType: 'bool', params: [{ type: 'string' }, { type: 'string' }], handler: re2Matches,
  });

/** The evaluation under way (evaluation is synchronous, so there is at most one): its budget left and its RE2 programs. */
interface Evaluation {
  budget: CelBudget;
  patterns: ReadonlyMap<string, RE2JS>;
}
let current: Evaluation | undefined;

class BudgetExceeded extends Error {}

function spend(units: number): void {
  if (!current) return;
  current.budget.remaining -= units;
  if (current.budget.remaining < 0) throw new BudgetExceeded('the claims expression went over its runtime budget');
}

function re2Matches(s: string, pattern: string): boolean {
  const re = current?.patterns.get(pattern);
  // Every pattern was compiled with its expression; anything else would be a bug, and is no match.
  if (!re) throw new Error('matches: pattern was not compiled with the expression');
  spend(regexCost(s.length, re.programSize()));
  // test(): a match anywhere, without capture groups (re2js's fastest path).
  return re.test(s);
}

/** Meters each node the evaluator runs (see the module header). */
function meterEvaluator(): void {
  const probe = environment.parse('true');
  let evaluator: { run(ast: ASTNode, ctx: unknown): unknown } | undefined;
  const root = probe.ast as unknown as { evaluate: (ev: typeof evaluator) => unknown };
  root.evaluate = (ev) => { evaluator = ev; return true; };
  probe({});
  if (!evaluator || typeof evaluator.run !== 'function') throw new Error('cel-js: cannot meter its evaluator');
  const ev = evaluator;
  ev.run = function run(ast: ASTNode, ctx: unknown): unknown {
    const node = ast as unknown as { op: string; evaluate(e: unknown, a: unknown, c: unknown): unknown };
    // A constant costs nothing, as in cel-go and in the estimate; nor does a conditional or a logical
    // operator itself (cel-go prices them at their operands only, and so does the estimate): the
    // operands it evaluates are metered on their own.
    if (FREE.has(node.op)) return node.evaluate(ev, ast, ctx);
    spend(1);
    const value = node.evaluate(ev, ast, ctx);
    // A node that makes a new string or list pays a tenth of its size; one that only reads a value does not.
    if (MAKES.has(node.op) && (typeof value === 'string' || Array.isArray(value))) spend(traversal(value.length));
    return value;
  };
}
/** Nodes the estimate gives no cost of their own (cel-cost.ts). */
const FREE = new Set(['value', '?:', '&&', '||']);
/** Nodes whose string or list result is newly made: concatenation, literals, function results. */
const MAKES = new Set(['+', 'list', 'call', 'rcall']);
meterEvaluator();

/** The first line of the library's message; its other lines draw a caret under the expression. */
function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0]!.trim().replaceAll(RE2_MATCHES, 'matches');
}

type Node = { op: string; args: unknown };

/**
 * Points every `matches` call at the RE2 overload and compiles its pattern;
 * the reason it cannot, or undefined.
 */
function useRe2(node: Node, patterns: Map<string, RE2JS>): string | undefined {
  if (node.op === 'call' || node.op === 'rcall') {
    const args = node.args as [string, ...unknown[]];
    if (args[0] === 'matches') {
      const list = (node.op === 'call' ? args[1] : args[2]) as Node[];
      const pattern = list[node.op === 'call' ? 1 : 0];
      if (!pattern || pattern.op !== 'value' || typeof pattern.args !== 'string') return 'matches needs a string literal as its pattern';
      if (!patterns.has(pattern.args)) {
        try {
          patterns.set(pattern.args, RE2JS.compile(pattern.args));
        } catch (err) {
          return `matches: the pattern is not a valid RE2 regular expression: ${firstLine(err)}`;
        }
      }
      args[0] = RE2_MATCHES;
    }
  }
  for (const child of children(node)) {
    const problem = useRe2(child, patterns);
    if (problem) return problem;
  }
  return undefined;
}

function children(node: Node): Node[] {
  const out: Node[] = [];
  const visit = (x: unknown): void => {
    if (Array.isArray(x)) x.forEach(visit);
    else if (x && typeof x === 'object' && 'op' in x) out.push(x as Node);
  };
  visit(node.args);
  return out;
}

const VARIABLES = new Map([['claims', anyValue(MAX_CLAIMS_JSON_BYTES)]]);

/** Compiles `expression`; an invalid one gives the compiler's message, for the Ready condition. */
export function compileClaimsExpression(expression: string): ClaimsExpression {
  let program: ReturnType<typeof environment.parse>;
  try {
    program = environment.parse(expression);
  } catch (err) {
    return { ok: false, error: firstLine(err) };
  }
  const patterns = new Map<string, RE2JS>();
  const re2Problem = useRe2(program.ast, patterns);
  if (re2Problem) return { ok: false, error: re2Problem };
  const { cost } = estimateCost(program.ast, VARIABLES, (pattern) => patterns.get(pattern)?.programSize() ?? pattern.length);
  if (cost > COST_LIMIT) {
    return { ok: false, error: `the expression's estimated cost ${cost} exceeds the limit of ${COST_LIMIT}: iterate over fewer or smaller lists, or match with simpler patterns or startsWith` };
  }
  const checked = program.check();
  if (!checked.valid) return { ok: false, error: firstLine(checked.error) };
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    return { ok: false, error: `the expression must be a bool, not ${checked.type}` };
  }
  return {
    ok: true,
    cost,
    matches(claims, budget = celBudget()) {
      if (budget.remaining < 0) return false;
      current = { budget, patterns };
      try {
        // An evaluation that went over is no match, even if cel-js swallowed the error on the way (`||` absorbs errors).
        return program({ claims }) === true && budget.remaining >= 0;
      } catch {
        return false;
      } finally {
        current = undefined;
      }
    },
  };
}
