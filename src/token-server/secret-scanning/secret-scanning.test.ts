/**
 * The secret-scanning endpoint's parts without a cluster: the report parser and the signature
 * check against any input (fast-check: a report is either read or refused with a 4xx, never
 * anything else), the labels and which keys get marked (a MemoryKeyStore, a recording marker),
 * and the public-keys document. test/secret-scanning.test.ts runs the whole over real HTTP against
 * the real processes.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { COMPROMISED_ANNOTATION, compromiseAnnotation, type CompromiseReport } from '../../api/compromise.ts';
import { generateSecret, hashSecret } from '../../keys/format.ts';
import { createLogger } from '../../shared/log.ts';
import { apiKeyFixture, deploymentObject } from '../fixtures.ts';
import type { KeyEntry } from '../keys.ts';
import { MemoryKeyStore } from '../memory-key-store.ts';
import { SecretScanning } from './endpoint.ts';
import { MAX_KEYS, parseKeysDocument } from './public-keys.ts';
import { MAX_MATCHES, parseReport, ReportRefused, signatureHeaders } from './report.ts';

const log = createLogger({ level: 'silent' });

function p256(): { id: string; privateKey: KeyObject; publicKey: KeyObject; pem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return { id: createHash('sha256').update(pem).digest('hex'), privateKey, publicKey, pem };
}
const partner = p256();
const signed = (body: string | Buffer, key = partner) => ({
  'github-public-key-identifier': key.id,
  'github-public-key-signature': sign('sha256', Buffer.from(body), { key: key.privateKey, dsaEncoding: 'der' }).toString('base64'),
});

function setup() {
  const dep = deploymentObject('team-a', 'airflow');
  const current = apiKeyFixture(dep, 'current');
  const oldSecret = generateSecret();
  const rotated = apiKeyFixture(dep, 'rotated', { status: { previousSecretHash: hashSecret(oldSecret), previousSecretValidUntil: '2999-01-01T00:00:00Z' } });
  const leakedBefore = generateSecret();
  const recovered = apiKeyFixture(dep, 'recovered', {
    status: { compromise: { secretHash: hashSecret(leakedBefore), reportedAt: '2026-01-01T00:00:00Z', source: 'secret-scanning' } },
  });
  const store = new MemoryKeyStore({ deployments: [dep], apiKeys: [current.apiKey, rotated.apiKey, recovered.apiKey] });
  const marks: { key: KeyEntry; report: CompromiseReport }[] = [];
  const scanning = new SecretScanning({
    keys: { key: (id) => Promise.resolve(id === partner.id ? partner.publicKey : 'unknown') },
    store, log, marker: { mark: (key, report) => { marks.push({ key, report }); return Promise.resolve(); } },
  });
  return { scanning, marks, store, current, rotated, oldSecret, recovered, leakedBefore };
}

describe('parseReport', () => {
  it('reads what GitHub sends', () => {
    expect(parseReport('[{"token":"NMIfyYncKcRALEXAMPLE","type":"mycompany_api_token","url":"https://github.com/octocat/Hello-World/blob/12345600b9cbe38a219f39a9941c9319b600c002/foo/bar.txt","source":"content"}]'))
      .toEqual([{ token: 'NMIfyYncKcRALEXAMPLE', type: 'mycompany_api_token', source: 'content',
        url: 'https://github.com/octocat/Hello-World/blob/12345600b9cbe38a219f39a9941c9319b600c002/foo/bar.txt' }]);
  });

  it.each([
    ['not JSON', '[{'], ['an object', '{"token":"x"}'], ['empty', '[]'], ['a string match', '["x"]'],
    ['a token of another type', '[{"token":1}]'], ['an empty token', '[{"token":""}]'], ['a url of another type', '[{"token":"x","url":{}}]'],
    ['too many matches', JSON.stringify(Array.from({ length: MAX_MATCHES + 1 }, () => ({ token: 'x' })))],
    ['a token too long', JSON.stringify([{ token: 'x'.repeat(1025) }])],
  ])('refuses %s (400)', (_what, body) => {
    expect(() => parseReport(body)).toThrow(ReportRefused);
    try { parseReport(body); } catch (err) { expect((err as ReportRefused).status).toBe(400); }
  });

  it('reads any well-shaped report exactly, and refuses anything else with a ReportRefused (property)', () => {
    const match = fc.record({
      token: fc.string({ minLength: 1, maxLength: 100 }), type: fc.string({ maxLength: 50 }),
      url: fc.option(fc.webUrl(), { nil: undefined }), source: fc.option(fc.constantFrom('content', 'commit', 'npm'), { nil: undefined }),
    });
    fc.assert(fc.property(fc.array(match, { minLength: 1, maxLength: MAX_MATCHES }), (matches) => {
      expect(parseReport(JSON.stringify(matches))).toEqual(matches.map((m) => ({ ...m, url: m.url, source: m.source })));
    }));
    fc.assert(fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify(v))), (body) => {
      try {
        const r = parseReport(body);
        expect(Array.isArray(r) && r.length > 0 && r.length <= MAX_MATCHES).toBe(true);
      } catch (err) {
        expect(err).toBeInstanceOf(ReportRefused);
      }
    }), { numRuns: 2000 });
  });
});

describe('signatureHeaders', () => {
  it.each<[string, Record<string, string | undefined>, string]>([
    ['no headers', {}, 'unsigned'],
    ['no signature', { 'github-public-key-identifier': 'abc' }, 'unsigned'],
    ['no key id', { 'github-public-key-signature': 'MEUCIQ==' }, 'unsigned'],
    ['a key id with spaces', { 'github-public-key-identifier': 'a b', 'github-public-key-signature': 'MEUCIQ==' }, 'unsigned'],
    ['a signature that is not base64', { 'github-public-key-identifier': 'abc', 'github-public-key-signature': 'ME%%' }, 'bad_signature'],
    ['a signature far too long', { 'github-public-key-identifier': 'abc', 'github-public-key-signature': 'A'.repeat(300) }, 'bad_signature'],
  ])('refuses %s (401)', (_what, headers, code) => {
    try {
      signatureHeaders(headers);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ReportRefused);
      expect((err as ReportRefused).code).toBe(code);
      expect((err as ReportRefused).status).toBe(401);
    }
  });
});

describe('SecretScanning.answer', () => {
  it('labels each match, answers hashes not tokens, and marks the current and the previous secret of a key once', async () => {
    const s = setup();
    const nobodys = generateSecret();
    const tokens = [s.current.secret, s.current.secret, s.oldSecret, s.leakedBefore, nobodys, `${nobodys.slice(0, -1)}!`, 'hello'];
    const body = JSON.stringify(tokens.map((token) => ({ token, type: 'apikeys_dev', url: 'https://github.com/a/b/blob/c/d' })));
    const a = await s.scanning.answer(signed(body), Buffer.from(body), Date.parse('2026-06-01T00:00:00Z'));
    expect(a.status).toBe(200);
    const answer = JSON.parse(a.body) as { token_hash: string; token_type: string; label: string }[];
    expect(answer.map((m) => m.label)).toEqual(['true_positive', 'true_positive', 'true_positive', 'true_positive', 'false_positive', 'false_positive', 'false_positive']);
    expect(answer.map((m) => m.token_hash)).toEqual(tokens.map((t) => createHash('sha256').update(t).digest('hex')));
    for (const t of tokens) expect(a.body).not.toContain(t);
    // The current secret of one key, the previous secret of another; the secret reported before is a replay.
    expect(s.marks.map((m) => [m.key.name, m.report.secretHash])).toEqual([
      ['current', hashSecret(s.current.secret)], ['rotated', hashSecret(s.oldSecret)],
    ]);
    expect(s.marks[0]!.report).toEqual({
      secretHash: hashSecret(s.current.secret), reportedAt: '2026-06-01T00:00:00.000Z', source: 'secret-scanning', url: 'https://github.com/a/b/blob/c/d',
    });
  });

  it('marks nothing for a secret already marked (a replay)', async () => {
    const s = setup();
    const ak = structuredClone(s.current.apiKey);
    ak.metadata.annotations = { [COMPROMISED_ANNOTATION]: compromiseAnnotation({ secretHash: hashSecret(s.current.secret), reportedAt: '2026-01-01T00:00:00Z', source: 'secret-scanning' }) };
    s.store.putApiKey(ak);
    const body = JSON.stringify([{ token: s.current.secret, type: 't' }]);
    const a = await s.scanning.answer(signed(body), Buffer.from(body), Date.now());
    expect(JSON.parse(a.body)).toEqual([{ token_hash: createHash('sha256').update(s.current.secret).digest('hex'), token_type: 't', label: 'true_positive' }]);
    expect(s.marks).toEqual([]);
  });

  it.each<[string, (body: string) => Record<string, string>, number]>([
    ['unsigned', () => ({}), 401],
    ['signed by an unknown key', (body) => signed(body, p256()), 401],
    ['signed by another key under the partner\'s id', (body) => ({ ...signed(body, p256()), 'github-public-key-identifier': partner.id }), 401],
    ['signed over another body', () => signed('[{"token":"x"}]'), 401],
  ])('refuses a report %s and marks nothing', async (_what, headers, status) => {
    const s = setup();
    const body = JSON.stringify([{ token: s.current.secret, type: 't' }]);
    const a = await s.scanning.answer(headers(body), Buffer.from(body), Date.now());
    expect(a.status).toBe(status);
    expect((JSON.parse(a.body) as { error: string }).error).toBe('invalid_signature');
    expect(s.marks).toEqual([]);
  });

  it('answers 503 when the partner\'s keys were never fetched, and when a mark cannot be written', async () => {
    const s = setup();
    const body = JSON.stringify([{ token: s.current.secret, type: 't' }]);
    const unreachable = new SecretScanning({ keys: { key: () => Promise.resolve('unavailable') }, store: s.store, log, marker: { mark: () => Promise.resolve() } });
    expect((await unreachable.answer(signed(body), Buffer.from(body), Date.now())).status).toBe(503);
    const failing = new SecretScanning({
      keys: { key: () => Promise.resolve(partner.publicKey) }, store: s.store, log, marker: { mark: () => Promise.reject(new Error('apiserver down')) },
    });
    const a = await failing.answer(signed(body), Buffer.from(body), Date.now());
    expect(a.status).toBe(503);
    expect(a.headers?.['retry-after']).toBe('10');
  });

  it('never answers anything but 200, 400 or 401 to any signed or unsigned body (property)', async () => {
    const s = setup();
    await fc.assert(fc.asyncProperty(fc.oneof(fc.string(), fc.json(), fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1'))),
      fc.boolean(), async (text, sign) => {
        const body = Buffer.from(text, 'latin1');
        const a = await s.scanning.answer(sign ? signed(body) : {}, body, Date.now());
        expect([200, 400, 401]).toContain(a.status);
        expect(() => JSON.parse(a.body) as unknown).not.toThrow();
      }), { numRuns: 300 });
  });
});

describe('parseKeysDocument', () => {
  it('keeps the ECDSA P-256 keys of GitHub\'s document by id, and skips anything else', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const keys = parseKeysDocument(JSON.stringify({ public_keys: [
      { key_identifier: partner.id, key: partner.pem, is_current: true },
      { key_identifier: 'rsa', key: rsa, is_current: false },
      { key_identifier: 'p384', key: p384, is_current: false },
      { key_identifier: 'junk', key: 'not a key' },
      { key: partner.pem },
      'nothing',
    ] }));
    expect([...keys.keys()]).toEqual([partner.id]);
  });

  it.each([
    ['not JSON', '{'], ['no public_keys', '{}'], ['public_keys not a list', '{"public_keys":{}}'],
    ['too many keys', JSON.stringify({ public_keys: Array.from({ length: MAX_KEYS + 1 }, (_, i) => ({ key_identifier: String(i), key: partner.pem })) })],
  ])('refuses a document that is %s', (_what, text) => {
    expect(() => parseKeysDocument(text)).toThrow();
  });
});
