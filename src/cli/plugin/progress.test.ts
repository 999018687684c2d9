import { describe, expect, it } from 'vitest';
import { pollUntil, startProgress } from './progress.ts';

function stream(isTTY: boolean): { isTTY: boolean; text: string; write(s: string): boolean } {
  return { isTTY, text: '', write(s: string) { this.text += s; return true; } };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('startProgress', () => {
  it('spins on a terminal, redrawing one line, and clears it at the end', async () => {
    const s = stream(true);
    const p = startProgress('waiting for ci', s);
    await sleep(250);
    p.update('reading Secret ci');
    p.done('done');
    expect(s.text.startsWith('\r\x1b[K⠋ waiting for ci 0s\r\x1b[K⠙ waiting for ci 0s')).toBe(true);
    expect(s.text).toContain('reading Secret ci');
    expect(s.text.endsWith('\r\x1b[Kdone\n')).toBe(true);
    expect(s.text).not.toContain('\n\r');
  });

  it('writes plain lines and a dot a second elsewhere (CI logs), without escape codes', async () => {
    const s = stream(false);
    const p = startProgress('waiting for ci', s);
    await sleep(1500);
    p.update('reading Secret ci');
    p.done();
    p.done('twice is harmless');
    expect(s.text).toMatch(/^waiting for ci \.{1,2}\nreading Secret ci \n$/);
  });
});

describe('pollUntil', () => {
  it('returns the first value, or undefined at the deadline', async () => {
    let n = 0;
    expect(await pollUntil(5000, () => Promise.resolve(++n === 3 ? 'x' : undefined), 10)).toBe('x');
    const t0 = Date.now();
    expect(await pollUntil(100, () => Promise.resolve(undefined), 20)).toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
