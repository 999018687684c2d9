import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  curveOfParams, derToJoseSignature, ecdsaResultToJose, ED25519_OID_DER, joseToDerSignature, P256_OID_DER, publicJwkOf, unwrapEcPoint,
} from './der.ts';

const octets = (b: Buffer) => Buffer.concat([Buffer.from([0x04, b.length]), b]);

describe('PKCS#11 public keys to JWK', () => {
  it('turns a P-256 CKA_EC_POINT (DER OCTET STRING) into the JWK node:crypto exports', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = publicKey.export({ format: 'der', type: 'spki' });
    const point = spki.subarray(spki.length - 65);
    const want = publicKey.export({ format: 'jwk' });
    expect(publicJwkOf(P256_OID_DER, octets(point))).toEqual(want);
    expect(publicJwkOf(P256_OID_DER, point)).toEqual(want);
  });

  it('turns an Ed25519 CKA_EC_POINT into an OKP JWK, for both forms of the curve parameters', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
    const want = publicKey.export({ format: 'jwk' });
    expect(publicJwkOf(ED25519_OID_DER, octets(raw))).toEqual(want);
    const name = Buffer.concat([Buffer.from([0x13, 12]), Buffer.from('edwards25519')]);
    expect(curveOfParams(name)).toBe('Ed25519');
  });

  it('refuses other curves, compressed points, wrong lengths and truncated DER', () => {
    expect(() => curveOfParams(Buffer.from('06052b81040022', 'hex'))).toThrow(/unsupported curve/); // P-384
    const compressed = Buffer.concat([Buffer.from([0x02]), Buffer.alloc(32, 1)]);
    expect(() => unwrapEcPoint(octets(compressed), 'P-256')).toThrow(/65/);
    expect(() => unwrapEcPoint(Buffer.from([0x04, 0x41, 0x04]), 'P-256')).toThrow(/longer than its input/);
    expect(() => unwrapEcPoint(Buffer.from([0x03, 0x02, 0, 0]), 'Ed25519')).toThrow(/OCTET STRING/);
    expect(() => unwrapEcPoint(Buffer.from([0x04, 0x85, 1, 1, 1, 1, 1]), 'P-256')).toThrow(/length form/);
    expect(() => unwrapEcPoint(Buffer.from([0x04]), 'P-256')).toThrow(/truncated/);
  });
});

describe('ECDSA signatures between DER and JOSE r||s', () => {
  it('round-trips signatures node:crypto makes in both encodings, and both verify', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    for (let i = 0; i < 200; i++) {
      const data = Buffer.from(`message ${i}`);
      const der = sign('sha256', data, privateKey);
      const jose = derToJoseSignature(der);
      expect(jose).toHaveLength(64);
      expect(verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, jose)).toBe(true);
      expect(joseToDerSignature(jose)).toEqual(der);
      expect(ecdsaResultToJose(der)).toEqual(jose);
      expect(ecdsaResultToJose(jose)).toBe(jose);
    }
  });

  it('keeps leading zeros of r and s in the fixed-width form, and writes minimal DER integers', () => {
    const jose = Buffer.concat([Buffer.alloc(31), Buffer.from([0x01]), Buffer.from([0x80]), Buffer.alloc(31, 0x11)]);
    const der = joseToDerSignature(jose);
    expect(der.toString('hex')).toBe(`3026020101022100${'80'}${'11'.repeat(31)}`);
    expect(derToJoseSignature(der)).toEqual(jose);
  });

  it('refuses malformed DER signatures', () => {
    expect(() => derToJoseSignature(Buffer.from('3006020101020101ff', 'hex'))).toThrow(/SEQUENCE/);
    expect(() => derToJoseSignature(Buffer.from('300602010102', 'hex'))).toThrow();
    expect(() => derToJoseSignature(Buffer.from('3006020181020101', 'hex'))).toThrow(/negative/);
    expect(() => derToJoseSignature(Buffer.from(`3026022101${'00'.repeat(32)}020101`, 'hex'))).toThrow(/longer than the curve order/);
    expect(() => joseToDerSignature(Buffer.alloc(63))).toThrow(/even/);
  });
});
