/**
 * The few DER and signature conversions between PKCS#11 and JOSE, as pure
 * functions (no module, no session):
 *
 * - CKA_EC_PARAMS is the DER of the curve's OID (P-256: 1.2.840.10045.3.1.7;
 *   Ed25519: 1.3.101.112, or the PrintableString "edwards25519" that PKCS#11
 *   3.0 also allows);
 * - CKA_EC_POINT is a DER OCTET STRING holding the point (P-256: 0x04||X||Y,
 *   uncompressed; Ed25519: the 32-byte public key); a few modules return the
 *   bare point, which is accepted too;
 * - CKM_ECDSA returns r||s, each as long as the curve's order (JOSE's form,
 *   RFC 7518 3.4); some modules and every X.509 tool speak DER
 *   (SEQUENCE { INTEGER r, INTEGER s }), so both directions are here.
 *
 * Every parser throws a clear Error on anything malformed, never reads past
 * its input, and accepts only definite lengths of at most two length bytes.
 */
import type { JWK } from 'jose';

export const P256_OID_DER = Buffer.from('06082a8648ce3d030107', 'hex');
export const ED25519_OID_DER = Buffer.from('06032b6570', 'hex');
/** PrintableString "edwards25519" (PKCS#11 3.0 5.2.3). */
const ED25519_NAME_DER = Buffer.concat([Buffer.from([0x13, 12]), Buffer.from('edwards25519')]);

export type CurveName = 'P-256' | 'Ed25519';

/** Which curve a CKA_EC_PARAMS names; throws for any other. */
export function curveOfParams(params: Buffer): CurveName {
  if (params.equals(P256_OID_DER)) return 'P-256';
  if (params.equals(ED25519_OID_DER) || params.equals(ED25519_NAME_DER)) return 'Ed25519';
  throw new Error(`unsupported curve parameters (${params.subarray(0, 16).toString('hex')})`);
}

interface Tlv { tag: number; value: Buffer; end: number }

/** One DER element at `offset` of `buf`. */
function readTlv(buf: Buffer, offset: number): Tlv {
  if (offset + 2 > buf.length) throw new Error('DER: truncated element');
  const tag = buf[offset]!;
  let len = buf[offset + 1]!;
  let start = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 2) throw new Error('DER: unsupported length form');
    if (start + n > buf.length) throw new Error('DER: truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]!;
    if (len < 0x80 || (n === 2 && len < 0x100)) throw new Error('DER: length not minimal');
    start += n;
  }
  if (start + len > buf.length) throw new Error('DER: element longer than its input');
  return { tag, value: buf.subarray(start, start + len), end: start + len };
}

function lengthBytes(len: number): Buffer {
  if (len < 0x80) return Buffer.from([len]);
  if (len < 0x100) return Buffer.from([0x81, len]);
  return Buffer.from([0x82, len >> 8, len & 0xff]);
}

const tlv = (tag: number, value: Buffer) => Buffer.concat([Buffer.from([tag]), lengthBytes(value.length), value]);

/** The point inside a CKA_EC_POINT: the OCTET STRING's content, or the bare point when it is not one. */
export function unwrapEcPoint(ecPoint: Buffer, curve: CurveName): Buffer {
  const bare = curve === 'P-256' ? 65 : 32;
  if (ecPoint.length === bare && (curve === 'Ed25519' || ecPoint[0] === 0x04)) return ecPoint;
  const el = readTlv(ecPoint, 0);
  if (el.tag !== 0x04 || el.end !== ecPoint.length) throw new Error('CKA_EC_POINT is not an OCTET STRING');
  if (el.value.length !== bare) throw new Error(`CKA_EC_POINT holds ${el.value.length} bytes, expected ${bare}`);
  if (curve === 'P-256' && el.value[0] !== 0x04) throw new Error('CKA_EC_POINT is not an uncompressed point');
  return el.value;
}

/** The public JWK (no kid, alg or use) of a key pair's CKA_EC_PARAMS and CKA_EC_POINT. */
export function publicJwkOf(ecParams: Buffer, ecPoint: Buffer): JWK {
  const curve = curveOfParams(ecParams);
  const point = unwrapEcPoint(ecPoint, curve);
  if (curve === 'Ed25519') return { kty: 'OKP', crv: 'Ed25519', x: point.toString('base64url') };
  return {
    kty: 'EC', crv: 'P-256',
    x: point.subarray(1, 33).toString('base64url'),
    y: point.subarray(33, 65).toString('base64url'),
  };
}

/** A DER INTEGER's content as an unsigned big-endian number of exactly `size` bytes. */
function fixedWidth(int: Buffer, size: number): Buffer {
  if (int.length === 0) throw new Error('DER: empty INTEGER');
  if (int[0]! & 0x80) throw new Error('ECDSA signature: negative INTEGER');
  let v = int;
  while (v.length > 1 && v[0] === 0) v = v.subarray(1);
  if (v.length > size) throw new Error('ECDSA signature: INTEGER longer than the curve order');
  return Buffer.concat([Buffer.alloc(size - v.length), v]);
}

/** DER (SEQUENCE { r INTEGER, s INTEGER }) to JOSE r||s (`size` bytes each; 32 for ES256). */
export function derToJoseSignature(der: Buffer, size = 32): Buffer {
  const seq = readTlv(der, 0);
  if (seq.tag !== 0x30 || seq.end !== der.length) throw new Error('ECDSA signature: not a DER SEQUENCE');
  const r = readTlv(seq.value, 0);
  const s = readTlv(seq.value, r.end);
  if (r.tag !== 0x02 || s.tag !== 0x02 || s.end !== seq.value.length) throw new Error('ECDSA signature: expected two INTEGERs');
  return Buffer.concat([fixedWidth(r.value, size), fixedWidth(s.value, size)]);
}

/** The minimal DER INTEGER content of an unsigned big-endian number. */
function derInteger(n: Buffer): Buffer {
  let v = n;
  while (v.length > 1 && v[0] === 0 && !(v[1]! & 0x80)) v = v.subarray(1);
  if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return tlv(0x02, v);
}

/** JOSE r||s to DER. */
export function joseToDerSignature(jose: Buffer): Buffer {
  if (jose.length === 0 || jose.length % 2) throw new Error('ECDSA signature: r||s must have an even, non-zero length');
  const half = jose.length / 2;
  return tlv(0x30, Buffer.concat([derInteger(jose.subarray(0, half)), derInteger(jose.subarray(half))]));
}

/**
 * A CKM_ECDSA result as JOSE r||s: already so when it is 2*size bytes (the
 * PKCS#11 form), converted when a module answers DER.
 */
export function ecdsaResultToJose(result: Buffer, size = 32): Buffer {
  if (result.length === 2 * size) return result;
  return derToJoseSignature(result, size);
}
