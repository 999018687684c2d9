import { describe, expect, it } from 'vitest';
import { createLogger } from '../log.ts';
import { Pkcs11Token } from './token.ts';

describe('Pkcs11Token.destroy', () => {
  const token = new Pkcs11Token({
    modulePath: '/nonexistent/libpkcs11.so', tokenLabel: 't', pinFile: '/nonexistent/pin', labelPrefix: 'apikey-operator-', sessions: 1,
    readWrite: true, log: createLogger({ level: 'silent' }),
  });
  const id = 'ab'.repeat(16);

  it.each([
    ['another application\'s label', { label: 'payments-signing-key', id }],
    ['the prefix with another id', { label: `apikey-operator-${'cd'.repeat(16)}`, id }],
    ['an id that is not 16 bytes of hex', { label: 'apikey-operator-abc', id: 'abc' }],
    ['an id in upper case', { label: `apikey-operator-${id.toUpperCase()}`, id: id.toUpperCase() }],
  ])('refuses %s before touching the module (a tampered Secret destroys nothing)', async (_what, ref) => {
    await expect(token.destroy(ref)).rejects.toThrow(/^refusing to destroy .*: not a key this program made \(apikey-operator-<id>\)$/);
  });

  it('goes to the module for a key of the form it makes (here: none connected, so it says the token is unavailable)', async () => {
    await expect(token.destroy({ label: `apikey-operator-${id}`, id })).rejects.toThrow(/PKCS#11 token is unavailable/);
  });
});
