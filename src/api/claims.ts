/**
 * Who keeps a name that several objects claim (a key id, a custom audience):
 * the first to claim it, by creationTimestamp, then uid. Both programs decide
 * with this one rule from the same watched objects, so the controller's
 * conditions and the token server's refusals always agree, and the winner
 * never changes while it exists: a later claimant can never take a name
 * away, or make it unusable, by claiming it too.
 */
export interface Claimant {
  metadata: { uid?: string; creationTimestamp?: Date | string; deletionTimestamp?: Date | string };
}

const created = (c: Claimant) => {
  const t = c.metadata.creationTimestamp;
  return t === undefined ? Number.POSITIVE_INFINITY : new Date(t).getTime();
};

/** Orders claimants, first claimant first. */
export function byFirstClaim(a: Claimant, b: Claimant): number {
  return created(a) - created(b) || (a.metadata.uid ?? '').localeCompare(b.metadata.uid ?? '');
}

/** The claimant that keeps the name, ignoring those being deleted; undefined when none is left. */
export function firstClaimant<T extends Claimant>(claimants: Iterable<T>): T | undefined {
  let first: T | undefined;
  for (const c of claimants) {
    if (c.metadata.deletionTimestamp) continue;
    if (!first || byFirstClaim(c, first) < 0) first = c;
  }
  return first;
}

/**
 * The custom audiences of a Deployment that another Deployment claimed first.
 * The operator's shared default audiences are never owned: listing one claims
 * nothing (tokens for them must be checked by their `deployment` claim).
 */
export function audiencesClaimedByOthers<T extends Claimant>(
  dep: T & { spec?: { audiences?: string[] } },
  claimantsOf: (audience: string) => T[],
  defaultAudiences: readonly string[],
): string[] {
  return (dep.spec?.audiences ?? []).filter((aud) => {
    if (defaultAudiences.includes(aud)) return false;
    const first = firstClaimant(claimantsOf(aud));
    return !!first && first.metadata.uid !== dep.metadata.uid;
  });
}
