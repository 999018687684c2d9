import { describe, expect, it } from 'vitest';
import { compileClaimsExpression } from './claims-expression.ts';

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
