/**
 * The external issuers the cluster admin allows (--federation-issuers), one
 * list that both programs read from the same flag: the controller to say
 * IssuerNotAllowed, the token server to decide which issuers it ever
 * contacts. An issuer is compared exactly, as it appears in its tokens'
 * `iss` and in spec.issuer: no trailing-slash or case folding, so what the
 * admin wrote is what is trusted.
 *
 * A private issuer (--federation-issuer-jwks ISSUER=PATH) is one whose keys
 * the admin gives in a file (a mounted Secret or ConfigMap) because its
 * discovery cannot be reached: the token server never contacts it. It must be
 * an https URL all the same: that is what FederatedCredential.spec.issuer
 * accepts, what OpenID Connect and Kubernetes' ServiceAccount issuer discovery
 * expect, and it keeps an issuer string from ever meaning two things. An
 * issuer is either discovered or private, never both.
 */

/** Why `issuer` cannot be listed, or undefined when it can: https, no query, fragment or credentials. */
export function issuerProblem(issuer: string): string | undefined {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    return `${JSON.stringify(issuer)} is not a URL`;
  }
  if (url.protocol !== 'https:') return `${JSON.stringify(issuer)} is not https`;
  if (url.search || url.hash || issuer.includes('?') || issuer.includes('#')) return `${JSON.stringify(issuer)} has a query or fragment`;
  if (url.username || url.password) return `${JSON.stringify(issuer)} holds credentials`;
  return undefined;
}

/** The allowed issuers of a flag value's entries; throws with the first entry's problem. */
export function allowedIssuers(entries: readonly string[]): ReadonlySet<string> {
  for (const e of entries) {
    const problem = issuerProblem(e);
    if (problem) throw new Error(`--federation-issuers: ${problem}`);
  }
  return new Set(entries);
}

/** ISSUER=PATH entries of --federation-issuer-jwks, by issuer; throws with the first entry's problem. */
export function privateIssuers(entries: readonly string[], discovered: ReadonlySet<string>): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  for (const e of entries) {
    // An issuer has no query, so no '=' but in a path, which issuers do not use: the first '=' ends it.
    const eq = e.indexOf('=');
    const issuer = eq < 0 ? e : e.slice(0, eq);
    const path = eq < 0 ? '' : e.slice(eq + 1);
    if (!path) throw new Error(`--federation-issuer-jwks: ${JSON.stringify(e)} is not ISSUER=PATH (the file holding the issuer's JWKS)`);
    const problem = issuerProblem(issuer);
    if (problem) throw new Error(`--federation-issuer-jwks: ${problem}`);
    if (out.has(issuer)) throw new Error(`--federation-issuer-jwks: ${JSON.stringify(issuer)} is given twice; list every key of a rotation in its one file`);
    if (discovered.has(issuer)) {
      throw new Error(`--federation-issuer-jwks: ${JSON.stringify(issuer)} is also in --federation-issuers; an issuer's keys are either discovered or given, not both`);
    }
    out.set(issuer, path);
  }
  return out;
}
