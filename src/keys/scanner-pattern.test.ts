/**
 * The token-format metadata a secret-scanning partner gets (docs/concepts/secrets.md, "For secret
 * scanners"): the regular expression the page documents is the one here, it finds generated
 * secrets wherever they end up in text and nothing else, and the page's checksum rule (its Python,
 * run by python3) agrees with the operator on real secrets and look-alikes.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateKeyId, generateSecret, isWellFormedSecret, SECRET_SCAN_PATTERN, secretFromBytes } from './format.ts';

const DOC = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'concepts', 'secrets.md'), 'utf8');
const section = DOC.slice(DOC.indexOf('## For secret scanners'));
const fenced = (lang: string) => section.split(`\`\`\`${lang}\n`)[1]!.split('```')[0]!;
const scan = (text: string) => [...text.matchAll(new RegExp(SECRET_SCAN_PATTERN.source, 'g'))].map((m) => m[0]);

describe('the secret scanners\' regular expression', () => {
  it('is the one the manual documents', () => {
    expect(fenced('text').trim()).toBe(SECRET_SCAN_PATTERN.source);
  });

  it.each<[string, (s: string) => string]>([
    ['a .env file', (s) => `API_KEY_ID=${generateKeyId()}\nAPI_KEY_SECRET=${s}\n`],
    ['YAML', (s) => `stringData:\n  API_KEY_SECRET: "${s}"\n`],
    ['JSON', (s) => JSON.stringify({ client_secret: s })],
    ['a shell command', (s) => `curl -d client_secret=${s}&grant_type=client_credentials`],
    ['a URL', (s) => `https://example.test/?secret=${s}#x`],
    ['the start and end of the text', (s) => s],
  ])('finds a generated secret in %s', (_where, place) => {
    for (let i = 0; i < 50; i++) {
      const s = generateSecret();
      expect(scan(place(s))).toEqual([s]);
    }
  });

  it('finds every generated secret, and each is well formed (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.constantFrom(' ', '\n', '"', '=', ':', '\''), (bytes, sep) => {
      const s = secretFromBytes(bytes);
      expect(scan(`x${sep}${s}${sep}y`)).toEqual([s]);
      expect(isWellFormedSecret(s)).toBe(true);
    }), { numRuns: 2000 });
  });

  it.each<[string, () => string]>([
    ['a key id', () => generateKeyId()],
    ['a secret cut short', () => generateSecret().slice(0, -1)],
    ['a secret with a character too many', () => `${generateSecret()}x`],
    ['another prefix', () => `aksx${generateSecret().slice(4)}`],
    ['a secret inside a longer word', () => `x${generateSecret()}`],
    ['a secret with a character outside base62', () => `${generateSecret().slice(0, 20)}-${generateSecret().slice(21)}`],
  ])('finds nothing in %s', (_what, make) => {
    for (let i = 0; i < 20; i++) expect(scan(make())).toEqual([]);
  });
});

describe('the checksum rule the manual gives in Python', () => {
  it('agrees with the operator on real secrets and on look-alikes that match the expression', () => {
    const real = Array.from({ length: 20 }, () => generateSecret());
    const lookAlikes = real.map((s) => `${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`);
    const program = `${fenced('python')}\nimport sys\nfor line in sys.stdin.read().split():\n    print(is_apikey_secret(line))\n`;
    const out = execFileSync('python3', ['-c', program], { input: [...real, ...lookAlikes].join('\n') }).toString().trim().split('\n');
    expect(out).toEqual([...real, ...lookAlikes].map((s) => (isWellFormedSecret(s) ? 'True' : 'False')));
    expect(out.slice(0, 20).every((v) => v === 'True')).toBe(true);
    expect(out.slice(20).filter((v) => v === 'True').length).toBe(0);
  });
});
