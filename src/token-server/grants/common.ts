/**
 * Rules every grant applies the same way: which audience a token is for
 * (`audience`, Auth0 style, or RFC 8707 `resource`) and which scope it gets
 * (a subset of what the key or user may do).
 */
import type { DeploymentEntry } from '../keys.ts';
import { InvalidScope, InvalidTarget } from '../oauth-errors.ts';
import { multi, single, type Params } from '../params.ts';

/**
 * The audiences asked for, each checked against those the Deployment allows
 * (its spec.audiences, else the server's defaults) and refused when it is a
 * custom audience the Deployment does not hold (api/claims.ts); none asked:
 * the first allowed one.
 */
export function resolveAudiences(params: Params, dep: DeploymentEntry, defaults: readonly string[]): readonly string[] {
  const allowed = dep.audiences ?? defaults;
  const audience = single(params, 'audience');
  const resources = multi(params, 'resource');
  const asked = audience === undefined ? [...resources] : [audience, ...resources];
  if (asked.length === 0) {
    const first = allowed[0];
    if (first === undefined) throw new InvalidTarget(`the Deployment ${dep.namespace}/${dep.name} has no audience configured`);
    asked.push(first);
  }
  for (const a of asked) {
    if (!allowed.includes(a)) {
      throw new InvalidTarget(`the audience ${JSON.stringify(truncate(a))} is not one the Deployment ${dep.namespace}/${dep.name} allows`);
    }
    if (dep.audiencesNotHeld.has(a)) {
      throw new InvalidTarget(`the audience ${JSON.stringify(truncate(a))} is not held by the Deployment ${dep.namespace}/${dep.name}: `
        + 'another Deployment claimed it first, or the operator has not claimed it yet');
    }
  }
  return asked.length === 1 ? asked : [...new Set(asked)];
}

/**
 * The scope of the token: every permission when none is asked for, else the
 * ones asked for (RFC 6749 3.3: space-separated), each of which must be
 * granted; returned in the order of `granted`.
 */
export function resolveScope(params: Params, granted: readonly string[], grantedSet: ReadonlySet<string>, all: string,
  whose = "this key's permissions"): string {
  const asked = single(params, 'scope');
  if (asked === undefined) return all;
  const tokens = asked.split(' ').filter((t) => t !== '');
  if (tokens.length === 0) return all;
  for (const t of tokens) {
    if (!grantedSet.has(t)) throw new InvalidScope(`the scope ${JSON.stringify(truncate(t))} is beyond ${whose} (${all})`);
  }
  return granted.filter((p) => tokens.includes(p)).join(' ');
}

export function truncate(s: string): string {
  return s.length > 64 ? `${s.slice(0, 64)}...` : s;
}
