/**
 * The external issuers the cluster admin allows (--federation-issuers), one
 * list that both programs read from the same flag: the controller to say
 * IssuerNotAllowed, the token server to decide which issuers it ever
 * contacts. An issuer is compared exactly, as it appears in its tokens'
 * `iss` and in spec.issuer: no trailing-slash or case folding, so what the
 * admin wrote is what is trusted.
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
