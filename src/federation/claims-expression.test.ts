import { describe, expect, it } from 'vitest';
import { WORST_CASES } from '../../test/support/cel-worst.ts';
import { celBudget, compileClaimsExpression, COST_LIMIT, MAX_CLAIMS_JSON_BYTES } from './claims-expression.ts';

const github = {
  sub: 'repo:acme/airflow-dags:ref:refs/heads/main', repository: 'acme/airflow-dags', ref: 'refs/heads/main',
  workflow: 'deploy', environment: 'prod', run_number: '42',
};

function matches(expression: string, claims: Record<string, unknown> = github): boolean {
  const c = compileClaimsExpression(expression);
  if (!c.ok) throw new Error(c.error);
  return c.matches(claims);
}

describe('a claims expression', () => {
  it.each<[string, boolean]>([
    ["claims.repository == 'acme/airflow-dags' && claims.ref == 'refs/heads/main'", true],
    ["claims.repository == 'acme/other' && claims.ref == 'refs/heads/main'", false],
    ["claims.repository.startsWith('acme/') && claims.environment in ['prod', 'staging']", true],
    ["has(claims.job_workflow_ref) && claims.job_workflow_ref == 'x'", false],
  ])('%s is %s for a GitHub Actions token', (expression, expected) => {
    expect(matches(expression)).toBe(expected);
  });

  it.each<[string, string]>([
    ['a claim the token does not have', "claims.environment == 'prod'"],
    ['a type mismatch', 'claims.repository + 1 == 2'],
    ['a value that is not a bool', 'claims.repository'],
  ])('does not match, and does not throw, on %s', (_what, expression) => {
    expect(matches(expression, { repository: 'acme/airflow-dags' })).toBe(false);
  });

  it.each<[string, string, string]>([
    ['an incomplete expression', "claims.repository ==", 'Unexpected token'],
    ['an unknown variable', "repository == 'acme/airflow-dags'", 'repository'],
    ['a result that can never be a bool', "claims.repository + 'x'", 'bool'],
  ])('refuses %s with the compiler\'s message', (_what, expression, part) => {
    const c = compileClaimsExpression(expression);
    expect(c.ok).toBe(false);
    if (!c.ok) {
      expect(c.error).toContain(part);
      expect(c.error).not.toContain('\n');
    }
  });

  it('refuses an expression beyond the size limits', () => {
    const huge = Array.from({ length: 300 }, (_, i) => `claims.ref == 'r${i}'`).join(' || ');
    expect(compileClaimsExpression(huge).ok).toBe(false);
  });
});

/** The attack: comprehensions over list literals nested `depth` deep (depth 7 ran for days before). */
function nestedComprehensions(depth: number, width = 8): string {
  const list = `[${Array.from({ length: width }, (_, i) => i).join(', ')}]`;
  let e = "claims.ref != ''";
  for (let i = 0; i < depth; i++) e = `${list}.all(x${i}, ${e})`;
  return e;
}

describe('the cost of a claims expression', () => {
  it.each([5, 6, 7])('refuses comprehensions nested %i deep as InvalidExpression with the estimated cost and the limit', (depth) => {
    const started = performance.now();
    const c = compileClaimsExpression(nestedComprehensions(depth));
    expect(performance.now() - started).toBeLessThan(1000);
    expect(c.ok).toBe(false);
    if (!c.ok) {
      const [, cost] = /estimated cost (\d+) exceeds the limit of (\d+)/.exec(c.error) ?? [];
      expect(Number(cost)).toBeGreaterThan(COST_LIMIT);
      expect(c.error).toContain(`limit of ${COST_LIMIT}`);
    }
  });

  it('refuses the 1,400-character depth-7 expression of the issue at compile time', () => {
    const attack = nestedComprehensions(7, 40);
    expect(attack.length).toBeLessThan(1400);
    const c = compileClaimsExpression(attack);
    expect(c.ok).toBe(false);
    if (!c.ok) expect(c.error).toMatch(/estimated cost \d+ exceeds/);
  });

  it('estimates nested comprehensions as the product of their ranges, like cel-go', () => {
    const one = compileClaimsExpression(nestedComprehensions(1));
    const two = compileClaimsExpression(nestedComprehensions(2));
    expect(one.ok && two.ok).toBe(true);
    if (one.ok && two.ok) expect(two.cost).toBeGreaterThan(7 * one.cost);
  });

  it('refuses a comprehension over the claims nested in another over the claims (a list as large as a token allows, squared)', () => {
    const c = compileClaimsExpression('claims.groups.all(a, claims.groups.exists(b, a == b))');
    expect(c.ok).toBe(false);
    if (!c.ok) expect(c.error).toContain('exceeds the limit');
  });

  it.each([
    "claims.repository == 'acme/airflow-dags' && claims.ref == 'refs/heads/main' && claims.workflow == 'deploy'",
    "claims.groups.exists(g, g == 'platform-admins')",
    "claims.groups.exists(g, g.startsWith('team-'))",
    "claims.sub.matches('^repo:acme/[a-z-]+:ref:refs/heads/main$')",
    "claims.ref.startsWith('refs/tags/v') && claims.environment in ['prod', 'staging']",
  ])('accepts a realistic expression within the limit: %s', (expression) => {
    const c = compileClaimsExpression(expression);
    expect(c.ok).toBe(true);
    if (c.ok) expect(c.cost).toBeLessThanOrEqual(COST_LIMIT);
  });

  it('stops an evaluation that goes over its runtime budget, and it is no match', () => {
    const expression = '[0,1,2,3,4,5,6,7,8,9].all(a, [0,1,2,3,4,5,6,7,8,9].all(b, a == b || a != b))';
    expect(matches(expression)).toBe(true);
    const c = compileClaimsExpression(expression);
    if (!c.ok) throw new Error(c.error);
    const budget = celBudget(50);
    expect(c.matches(github, budget)).toBe(false);
    expect(budget.remaining).toBeLessThan(0);
    // A spent budget matches nothing, not even a cheap expression.
    expect(compileClaimsExpression('true').ok && (compileClaimsExpression('true') as { matches: typeof c.matches }).matches(github, budget)).toBe(false);
  });

  it('is no match when the budget runs out inside an `||`, which cel-js lets absorb errors', () => {
    const c = compileClaimsExpression('[0,1,2,3,4,5,6,7,8,9].all(a, [0,1,2,3,4,5,6,7,8,9].all(b, a == b || a != b)) || true');
    if (!c.ok) throw new Error(c.error);
    expect(c.matches(github)).toBe(true);
    expect(c.matches(github, celBudget(30))).toBe(false);
  });

  it('spends at run time no more than it estimated, for claims as large as a token can carry', () => {
    const groups = Array.from({ length: 400 }, (_, i) => `group-${i}`);
    const claims = { ...github, groups, sub: 'x'.repeat(MAX_CLAIMS_JSON_BYTES - JSON.stringify(groups).length - 200) };
    for (const expression of [
      "claims.groups.exists(g, g == 'group-399')",
      "'group-399' in claims.groups && claims.sub.size() > 10",
      "claims.sub.matches('^(x+)+$') && claims.sub.size() > 10",
      nestedComprehensions(3),
      "['a','b','c'].map(x, x + claims.ref).exists(y, y.endsWith('main'))",
    ]) {
      const c = compileClaimsExpression(expression);
      if (!c.ok) throw new Error(`${expression}: ${c.error}`);
      const budget = celBudget(c.cost);
      c.matches(claims, budget);
      expect(budget.remaining, expression).toBeGreaterThanOrEqual(0);
    }
  });
});

describe('the costliest expressions the CRD admits (test/support/cel-worst.ts)', () => {
  it.each(Object.entries(WORST_CASES))('%s: fits the CRD, compiles just under the limit, and spends no more than it estimated', (_what, { expression, claims }) => {
    expect(expression.length).toBeLessThanOrEqual(4096);
    const c = compileClaimsExpression(expression);
    if (!c.ok) throw new Error(c.error);
    expect(c.cost).toBeLessThanOrEqual(COST_LIMIT);
    expect(c.cost).toBeGreaterThan(COST_LIMIT * 0.85);
    const budget = celBudget(c.cost);
    expect(c.matches(claims, budget)).toBe(true);
    expect(budget.remaining).toBeGreaterThanOrEqual(0);
  });
});

describe('matches', () => {
  it("runs '^(a+)+$' on a 28-character subject in linear time (RE2), where a backtracking RegExp takes over a second", () => {
    const c = compileClaimsExpression("claims.sub.matches('^(a+)+$')");
    if (!c.ok) throw new Error(c.error);
    const started = performance.now();
    expect(c.matches({ sub: `${'a'.repeat(27)}b` })).toBe(false);
    expect(c.matches({ sub: 'a'.repeat(28) })).toBe(true);
    expect(performance.now() - started).toBeLessThan(200);
  });

  it('runs the same on the largest subject a token can carry', () => {
    const c = compileClaimsExpression("claims.sub.matches('^(a+)+$')");
    if (!c.ok) throw new Error(c.error);
    const started = performance.now();
    expect(c.matches({ sub: `${'a'.repeat(MAX_CLAIMS_JSON_BYTES - 20)}b` })).toBe(false);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it.each<[string, boolean]>([
    ["claims.ref.matches('^refs/heads/(main|release-[0-9]+)$')", true],
    ["claims.repository.matches('airflow')", true],
    ["matches(claims.repository, '^acme/')", true],
    ["claims.repository.matches('^other/')", false],
  ])('keeps CEL semantics (RE2, a match anywhere unless anchored): %s is %s', (expression, expected) => {
    expect(matches(expression)).toBe(expected);
  });

  it.each<[string, string, RegExp]>([
    ['a backreference, which RE2 does not have', "claims.sub.matches('(a)\\\\1')", /not a valid RE2/],
    ['a lookahead', "claims.sub.matches('(?=a)')", /not a valid RE2/],
    ['a repeat count over 1000', "claims.sub.matches('a{1001}')", /not a valid RE2/],
    ['a pattern that is not a literal', 'claims.sub.matches(claims.pattern)', /string literal/],
  ])('refuses %s when it compiles', (_what, expression, message) => {
    const c = compileClaimsExpression(expression);
    expect(c.ok).toBe(false);
    if (!c.ok) expect(c.error).toMatch(message);
  });
});
