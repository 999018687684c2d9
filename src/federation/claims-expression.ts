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
 * Parse-time limits bound what a namespace editor can make the token server
 * evaluate.
 *
 * @example
 *   const c = compileClaimsExpression("claims.repository == 'acme/airflow-dags'");
 *   if (c.ok) c.matches({ repository: 'acme/airflow-dags' }); // true
 */
import { Environment } from '@marcbachmann/cel-js';

export type ClaimsExpression =
  | { ok: true; matches(claims: Readonly<Record<string, unknown>>): boolean }
  | { ok: false; error: string };

const environment = new Environment({
  limits: { maxAstNodes: 512, maxDepth: 32, maxListElements: 64, maxMapEntries: 64, maxCallArguments: 8 },
}).registerVariable('claims', 'map');

/** The first line of the library's message; its other lines draw a caret under the expression. */
function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0]!.trim();
}

/** Compiles `expression`; an invalid one gives the compiler's message, for the Ready condition. */
export function compileClaimsExpression(expression: string): ClaimsExpression {
  let program: ReturnType<typeof environment.parse>;
  try {
    program = environment.parse(expression);
  } catch (err) {
    return { ok: false, error: firstLine(err) };
  }
  const checked = program.check();
  if (!checked.valid) return { ok: false, error: firstLine(checked.error) };
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    return { ok: false, error: `the expression must be a bool, not ${checked.type}` };
  }
  return {
    ok: true,
    matches(claims) {
      try {
        return program({ claims }) === true;
      } catch {
        return false;
      }
    },
  };
}
