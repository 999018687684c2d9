import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NOT_BEFORE_KEY, readSignOuts, signOutPatch, type SignOutView } from './sign-outs.ts';

/** The ConfigMap's data after a merge patch. */
function apply(data: Record<string, string>, patch: Record<string, string | null>): Record<string, string> {
  const out = { ...data };
  for (const [k, v] of Object.entries(patch)) if (v === null) delete out[k]; else out[k] = v;
  return out;
}
const refused = (v: SignOutView, id: string, iat: number) => iat < v.notBefore || v.entries.has(id);
const id = (i: number) => `session-${String(i).padStart(12, '0')}`;

describe('the sign-out list', () => {
  it('adds the session, drops the expired ones, and reads only its own keys', () => {
    const data = { [`s.${id(1)}`]: '10:50', [`s.${id(2)}`]: '10:500', 'other': 'x', 's.bad key': '1:2', [`s.${id(3)}`]: 'nope', [NOT_BEFORE_KEY]: '7' };
    const view = readSignOuts({ apiVersion: 'v1', kind: 'ConfigMap', metadata: {}, data });
    expect([...view.entries.keys()]).toEqual([id(1), id(2)]);
    expect(view.notBefore).toBe(7);
    const { data: patch, evicts } = signOutPatch(view, id(4), 90, 400, 100);
    expect(evicts).toBe(false);
    expect(patch).toEqual({ [`s.${id(1)}`]: null, [`s.${id(4)}`]: '90:400' });
  });

  it('stays within its bound and never lets a signed-out session back in: evicted ones fall behind not-before', () => {
    fc.assert(fc.property(fc.array(fc.record({ iat: fc.nat(1000), life: fc.integer({ min: 1, max: 1000 }) }), { minLength: 1, maxLength: 60 }), (outs) => {
      const max = 16;
      let data: Record<string, string> = {};
      const live: { id: string; iat: number; exp: number }[] = [];
      let now = 0;
      outs.forEach((o, i) => {
        now += 5;
        const s = { id: id(i), iat: Math.min(o.iat, now), exp: now + o.life };
        data = apply(data, signOutPatch(readSignOuts({ apiVersion: 'v1', kind: 'ConfigMap', metadata: {}, data }), s.id, s.iat, s.exp, now, max).data);
        live.push(s);
        const view = readSignOuts({ apiVersion: 'v1', kind: 'ConfigMap', metadata: {}, data });
        expect(view.entries.size).toBeLessThanOrEqual(max);
        for (const l of live.filter((x) => x.exp > now)) expect(refused(view, l.id, l.iat)).toBe(true);
      });
    }), { numRuns: 300 });
  });
});
