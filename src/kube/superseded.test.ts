import { describe, expect, it } from 'vitest';
import { SupersededVersions } from './superseded.ts';

const v = (rv: string, name = 'ci') => ({ metadata: { namespace: 'ns', name, resourceVersion: rv } });

describe('SupersededVersions', () => {
  it('calls a cached version stale once our write replaced it, until the written version is delivered', () => {
    const s = new SupersededVersions();
    s.record(v('1'), v('2'));
    expect(s.isStale(v('1'))).toBe(true);
    expect(s.isStale(v('2'))).toBe(false);
    s.record(v('2'), v('3'));
    s.observe(v('2')); // an older event: still waiting for 3
    expect(s.isStale(v('1'))).toBe(true);
    expect(s.isStale(v('2'))).toBe(true);
    s.observe(v('3'));
    expect(s.isStale(v('1'))).toBe(false);
    expect(s.size).toBe(0);
  });

  it('keeps keys apart, forgets a deleted object, and never calls an absent object stale', () => {
    const s = new SupersededVersions();
    s.record(v('1', 'a'), v('2', 'a'));
    expect(s.isStale(v('1', 'b'))).toBe(false);
    expect(s.isStale(undefined)).toBe(false);
    s.forget(v('2', 'a'));
    expect(s.isStale(v('1', 'a'))).toBe(false);
    expect(s.size).toBe(0);
  });
});
