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
