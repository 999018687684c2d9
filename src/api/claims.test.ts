import { describe, expect, it } from 'vitest';
import { firstClaimant } from './claims.ts';

const c = (uid: string, creationTimestamp?: string, deleting = false) => ({
  metadata: { uid, creationTimestamp, deletionTimestamp: deleting ? '2026-01-01T00:00:00Z' : undefined },
});

describe('firstClaimant', () => {
  it.each([
    ['the oldest wins', [c('b', '2026-01-02T00:00:00Z'), c('a', '2026-01-03T00:00:00Z'), c('z', '2026-01-01T00:00:00Z')], 'z'],
    ['a tie in time goes to the smaller uid', [c('b', '2026-01-01T00:00:00Z'), c('a', '2026-01-01T00:00:00Z')], 'a'],
    ['one being deleted hands the name on', [c('a', '2026-01-01T00:00:00Z', true), c('b', '2026-01-02T00:00:00Z')], 'b'],
    ['one without a creation time never wins over one with', [c('a'), c('b', '2026-01-02T00:00:00Z')], 'b'],
  ])('%s', (_name, claimants, winner) => {
    expect(firstClaimant(claimants)?.metadata.uid).toBe(winner);
  });

  it('names nobody when nobody is left', () => {
    expect(firstClaimant([])).toBeUndefined();
    expect(firstClaimant([c('a', '2026-01-01T00:00:00Z', true)])).toBeUndefined();
  });
});
