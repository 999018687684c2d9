/**
 * The compromised mark (compromise.ts): every reader gets a well-formed report or none, and
 * nothing that travels into an event, a condition or a status can drive a terminal or carry a
 * secret.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateSecret, hashSecret } from '../keys/format.ts';
import {
  COMPROMISED_ANNOTATION, compromiseAnnotation, describeReport, MAX_REPORT_REASON, MAX_REPORT_URL, parseCompromiseReport, reportOn,
  safeReportUrl, type CompromiseReport,
} from './compromise.ts';

const report: CompromiseReport = { secretHash: hashSecret(generateSecret()), reportedAt: '2026-12-07T08:00:00Z', source: 'secret-scanning' };

describe('safeReportUrl', () => {
  it.each<[string, unknown, string | undefined]>([
    ['keeps a GitHub blob URL', 'https://github.com/acme/app/blob/0123/.env', 'https://github.com/acme/app/blob/0123/.env'],
    ['percent-escapes spaces and quotes', 'https://github.com/a b/"c"', 'https://github.com/a%20b/%22c%22'],
    ['drops user information', 'https://user:pw@github.com/x', 'https://github.com/x'],
    ['refuses javascript:', 'javascript:alert(1)', undefined],
    ['refuses a relative path', '/acme/app', undefined],
    ['refuses a non-string', 42, undefined],
  ])('%s', (_what, raw, want) => {
    expect(safeReportUrl(raw)).toBe(want);
  });

  it('masks a secret quoted in the URL and cuts long ones', () => {
    const secret = generateSecret();
    expect(safeReportUrl(`https://github.com/search?q=${secret}`)).toBe('https://github.com/search?q=aks_[REDACTED]');
    const long = safeReportUrl(`https://github.com/${'a'.repeat(2000)}`)!;
    expect(long.length).toBe(MAX_REPORT_URL);
    expect(long.endsWith('…')).toBe(true);
  });
});

describe('parseCompromiseReport', () => {
  it('reads back what compromiseAnnotation writes', () => {
    const full = { ...report, url: 'https://github.com/a/b', reason: 'pasted into a chat' };
    expect(parseCompromiseReport(compromiseAnnotation(full))).toEqual(full);
    expect(reportOn({ [COMPROMISED_ANNOTATION]: compromiseAnnotation(report) })).toEqual(report);
    expect(reportOn(undefined)).toBeUndefined();
  });

  it.each([
    ['not JSON', '{'], ['a list', '[]'], ['no hash', JSON.stringify({ ...report, secretHash: undefined })],
    ['a hash of another shape', JSON.stringify({ ...report, secretHash: 'sha256:short' })],
    ['a time that is not RFC 3339', JSON.stringify({ ...report, reportedAt: 'yesterday' })],
    ['another source', JSON.stringify({ ...report, source: 'someone' })],
    ['a javascript: url', JSON.stringify({ ...report, url: 'javascript:alert(1)' })],
    ['a reason of another type', JSON.stringify({ ...report, reason: 1 })],
    ['a value too long', JSON.stringify({ ...report, reason: 'x'.repeat(5000) })],
  ])('ignores a value that is %s', (_what, value) => {
    expect(parseCompromiseReport(value)).toBeUndefined();
  });

  it('keeps only printable text of a reason, cut to its bound', () => {
    const r = parseCompromiseReport(JSON.stringify({ ...report, reason: `a\u001b[2J\nb\u202e${'x'.repeat(400)}` }))!;
    // eslint-disable-next-line no-control-regex
    expect(r.reason).not.toMatch(/[\u0000-\u001f\u202e]/);
    expect(r.reason!.length).toBe(MAX_REPORT_REASON);
  });

  it('never throws and never returns a report with control characters, whatever the value (property)', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.json(), fc.record({
      secretHash: fc.constantFrom(report.secretHash, 'sha256:x'), reportedAt: fc.constantFrom(report.reportedAt, ''),
      source: fc.constantFrom('kubectl', 'console', 'x'), url: fc.option(fc.string(), { nil: undefined }), reason: fc.option(fc.string(), { nil: undefined }),
    }).map((o) => JSON.stringify(o))), (value) => {
      const r = parseCompromiseReport(value);
      // eslint-disable-next-line no-control-regex
      if (r) expect(describeReport(r)).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    }), { numRuns: 2000 });
  });
});
