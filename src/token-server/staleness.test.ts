import { describe, expect, it } from 'vitest';
import type { Logger } from '../shared/log.ts';
import { StalenessGuard } from './staleness.ts';

/** A logger that keeps what it is told, at error and info level. */
function recordingLog() {
  const lines: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, msg: string) => { lines.push({ level, fields, msg }); };
  return { lines, log: { error: at('error'), info: at('info'), warn: at('warn'), debug: at('debug') } as unknown as Logger };
}

describe('StalenessGuard', () => {
  it('is never stale without a bound, whatever the ages, and still reports them', () => {
    let now = 1_000_000;
    const g = new StalenessGuard({ boundMs: undefined, lastHeard: () => ({ apikeys: 1, deployments: 0 }), log: recordingLog().log, now: () => now });
    now += 3_600_000;
    expect(g.stale()).toBeUndefined();
    expect(g.ages().map((a) => a.cache)).toEqual(['apikeys', 'deployments']);
  });

  it('names the stalest cache past the bound, and nothing at or under it', () => {
    let now = 1_000_000;
    const heard = { apikeys: now, deployments: now, signing_keys: now };
    const g = new StalenessGuard({ boundMs: 30_000, lastHeard: () => heard, log: recordingLog().log, now: () => now });
    now += 30_000;
    expect(g.stale()).toBeUndefined();
    heard.apikeys = now - 10_000;
    now += 1;
    expect(g.stale()).toEqual({ cache: 'deployments', ageMs: 30_001 });
    heard.deployments = now;
    expect(g.stale()).toEqual({ cache: 'signing_keys', ageMs: 30_001 });
    heard.signing_keys = now;
    expect(g.stale()).toBeUndefined();
  });

  it('counts a cache that never heard from the program\'s start, so a server that never reached the apiserver trips too', () => {
    let now = 1_000_000;
    const g = new StalenessGuard({ boundMs: 15_000, lastHeard: () => ({ apikeys: 0 }), log: recordingLog().log, now: () => now });
    expect(g.stale()).toBeUndefined();
    now += 15_001;
    expect(g.stale()).toEqual({ cache: 'apikeys', ageMs: 15_001 });
  });

  it('logs one error line when it trips and one info line when it recovers, not one per check', () => {
    let now = 1_000_000;
    const heard = { apikeys: now };
    const { lines, log } = recordingLog();
    const g = new StalenessGuard({ boundMs: 15_000, lastHeard: () => heard, log, now: () => now });
    for (let i = 0; i < 40; i++) { now += 1000; g.check(); }
    expect(lines.map((l) => l.level)).toEqual(['error']);
    expect(lines[0]!.fields).toEqual({ cache: 'apikeys', secondsSinceHeard: 16, maxCacheStalenessSeconds: 15 });
    heard.apikeys = now;
    g.check();
    g.check();
    expect(lines.map((l) => l.level)).toEqual(['error', 'info']);
    expect(lines[1]!.fields).toEqual({ refusedForMs: 24_000 });
  });
});
