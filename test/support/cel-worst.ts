/**
 * The costliest claims expressions the FederatedCredential CRD admits, one of
 * each kind of work, each built to sit just under COST_LIMIT, and the
 * largest claims an external token can carry, which make every one of them
 * do all the work it may. bench/cel-budget/run.ts times them; the unit test
 * of claims-expression.ts checks that each compiles and stays within it.
 */
import { compileClaimsExpression, COST_LIMIT, MAX_CLAIMS_JSON_BYTES } from '../../src/federation/claims-expression.ts';

const list = (n: number) => `[${Array.from({ length: n }, (_, i) => i).join(',')}]`;
const strings = (n: number, width: number) => `[${Array.from({ length: n }, (_, i) => `'${String(i).padStart(width, 'x')}'`).join(',')}]`;

/** The largest n in [1, 64] for which `make(n)` fits the CRD (4096 characters) and compiles within the limit. */
function largest(make: (n: number) => string): string {
  let best = make(1);
  for (let n = 1; n <= 64; n++) {
    const e = make(n);
    if (e.length <= 4096 && compileClaimsExpression(e).ok) best = e;
  }
  return best;
}

/** What a token's other claims (iss, sub, aud, iat, exp) take of its claims, at most. */
const OTHER_CLAIMS_BYTES = 400;

/** A claim as long as a token's claims allow, of a's and b's, so that an RE2 program cannot skip it. */
function longestText(): string {
  let text = '';
  for (let i = 0; text.length < MAX_CLAIMS_JSON_BYTES - OTHER_CLAIMS_BYTES; i++) text += i % 3 === 0 ? 'b' : 'a';
  return text;
}

/** As many one-character groups as a token's claims allow (two JSON bytes each with quotes would be more: use digits). */
function mostGroups(): number[] {
  return Array.from({ length: Math.floor((MAX_CLAIMS_JSON_BYTES - OTHER_CLAIMS_BYTES) / 2) }, () => 7);
}

export interface WorstCase { expression: string; claims: Record<string, unknown> }

const withText = (expression: string): WorstCase => ({ expression, claims: { text: longestText() } });

export const WORST_CASES: Record<string, WorstCase> = {
  'nested comprehensions over list literals': withText(largest((n) => `${list(n)}.all(a, ${list(n)}.all(b, ${list(n)}.all(c, a + b + c >= 0)))`)),
  'a comprehension making lists': withText(largest((n) => `${list(64)}.map(a, ${list(n)}.map(b, a + b)).size() > 0`)),
  'string concatenation in a comprehension': withText(largest((n) => `${strings(64, n)}.all(a, ${strings(16, n)}.all(b, a + b != claims.text))`)),
  'RE2 over the longest claim': withText(largest((n) => `claims.text.matches('^(a|b)*a(a|b){${n}}$')`)),
  'a comprehension over the longest claim list': { expression: 'claims.groups.all(g, g >= 0)', claims: { groups: mostGroups() } },
};

export { COST_LIMIT };
