import { describe, expect, it } from 'vitest';
import { REASON_CLASS, RECONCILING, setCondition, setReadyConditions, STALLED, type Condition, type ReadyState } from './conditions.ts';
import { EventReason, ExpiringReason, Reason, ReadyReason, type ReadyReasonValue } from './reasons.ts';

const T0 = new Date('2026-06-01T12:00:00Z');
const T1 = new Date('2026-06-01T13:00:00Z');
const byType = (list: Condition[]) => Object.fromEntries(list.map((c) => [c.type, c]));

describe('every reason', () => {
  it.each(Object.entries(Reason))('%s (%s) is a classified Ready reason, an Expiring reason or an event-only reason', (key, value) => {
    const isReady = key in ReadyReason;
    const isEvent = key in EventReason;
    const isExpiring = key in ExpiringReason;
    expect([isReady, isEvent, isExpiring].filter(Boolean)).toHaveLength(1);
    if (isReady) expect(['ready', 'progressing', 'stalled']).toContain(REASON_CLASS[value as ReadyReasonValue]);
    else expect(Object.keys(REASON_CLASS)).not.toContain(value);
  });

  it('classifies exactly the Ready reasons, and no event-only reason shares a value with one', () => {
    expect(Object.keys(REASON_CLASS).sort()).toEqual([...new Set(Object.values(ReadyReason))].sort());
    const readyValues = new Set<string>(Object.values(ReadyReason));
    expect(Object.values(EventReason).filter((v) => readyValues.has(v))).toEqual([]);
  });

  it.each<[string, ReadyReasonValue]>([
    ['an expired key', 'Expired'],
    ['a key or credential whose Deployment is gone', 'DeploymentNotFound'],
    ['a Deployment whose audience another claimed', 'AudienceConflict'],
    ['a key whose id another claimed', 'KeyIdConflict'],
    ['a key whose Secret name another Secret holds', 'SecretConflict'],
    ['a credential whose claims do not compile', 'InvalidExpression'],
    ['a credential whose issuer is not allowed', 'IssuerNotAllowed'],
  ])('calls %s stalled: nothing changes until a person acts', (_what, reason) => {
    expect(REASON_CLASS[reason]).toBe('stalled');
  });

  it('calls a key being issued progressing, and the Ready reasons of every kind ready', () => {
    expect(REASON_CLASS.Issuing).toBe('progressing');
    expect([REASON_CLASS.SecretReady, REASON_CLASS.Ready]).toEqual(['ready', 'ready']);
  });
});

describe('the kstatus conditions beside Ready', () => {
  it.each<[string, ReadyState, 'True' | 'False', 'True' | 'False']>([
    ['ready', { status: 'True', reason: 'SecretReady', message: 'The credentials Secret is up to date' }, 'False', 'False'],
    ['progressing', { status: 'Unknown', reason: 'Issuing', message: 'Writing the credentials Secret' }, 'True', 'False'],
    ['stalled', { status: 'False', reason: 'Expired', message: 'The key passed spec.expiresAt' }, 'False', 'True'],
  ])('for a %s reason: Reconciling %s, Stalled %s, both with the reason, message and generation', (_cls, ready, reconciling, stalled) => {
    const c = byType(setReadyConditions(undefined, ready, 3, T0));
    expect(c.Ready).toEqual({ type: 'Ready', ...ready, observedGeneration: 3, lastTransitionTime: '2026-06-01T12:00:00Z' });
    expect(c[RECONCILING]).toMatchObject({ status: reconciling, reason: ready.reason, message: ready.message, observedGeneration: 3 });
    expect(c[STALLED]).toMatchObject({ status: stalled, reason: ready.reason, message: ready.message, observedGeneration: 3 });
  });

  it('moves lastTransitionTime only for the conditions that flip, and keeps the order of the list', () => {
    const issuing = setReadyConditions(undefined, { status: 'Unknown', reason: 'Issuing', message: 'm' }, 1, T0);
    const issued = setReadyConditions(issuing, { status: 'True', reason: 'SecretReady', message: 'm' }, 1, T1);
    expect(issued.map((c) => [c.type, c.status, c.lastTransitionTime])).toEqual([
      ['Ready', 'True', '2026-06-01T13:00:00Z'],
      ['Reconciling', 'False', '2026-06-01T13:00:00Z'],
      ['Stalled', 'False', '2026-06-01T12:00:00Z'],
    ]);
  });

  it('leaves conditions of other types where they are', () => {
    const other = setCondition(undefined, { type: 'Expiring', status: 'True', reason: 'ExpiresSoon', message: 'in 6 days' }, T0);
    const list = setReadyConditions(other, { status: 'True', reason: 'SecretReady', message: 'm' }, 1, T1);
    expect(list.map((c) => c.type)).toEqual(['Expiring', 'Ready', 'Reconciling', 'Stalled']);
    expect(list[0]).toEqual(other[0]);
  });
});
