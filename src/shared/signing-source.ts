/**
 * Key sources: where the private halves of the signing keys live, behind one
 * interface, so that the rotation plan (signing-keys.ts), the controller and
 * the token servers do not care. Two exist:
 *
 * - `SecretKeySource`: key pairs generated in process and kept, private JWK
 *   included, in the signing-keys Secret; signatures made with node:crypto.
 * - `Pkcs11KeySource` (pkcs11/source.ts): key pairs generated inside a
 *   PKCS#11 token, never extractable; the Secret records only the public JWK
 *   and the key's CKA_LABEL/CKA_ID; signatures made by the token.
 *
 * This is the seam a cloud KMS (AWS KMS, Google Cloud KMS, Vault Transit)
 * would plug into: `generate` creates a key version in the KMS and returns
 * its public JWK and a location (the KMS key's name/ARN and version) to
 * record; `sign` sends the JWS signing input (or its SHA-256, for ES256) and
 * returns the signature in JOSE form (r||s: KMSes answer DER, see
 * pkcs11/der.ts derToJoseSignature); `health` says whether it can sign now.
 */
import { sign as cryptoSign } from 'node:crypto';
import type { JWK } from 'jose';
import {
  inProcessKeyMaterial, privateKeyOf, type KeyGenerator, type SigningAlgorithm, type SigningKeyMaterial, type SigningKeyRecord,
} from './signing-keys.ts';

export interface SourceHealth {
  up: boolean;
  /** Why not, from a small fixed set (pkcs11/token.ts Pkcs11Problem). */
  problem?: string;
}

export interface SigningKeySource extends KeyGenerator {
  /** Whether this source holds the private half of `record`. */
  holds(record: SigningKeyMaterial): boolean;
  /** The JWS signature (JOSE form) of `input` with `record`'s private half; synchronous for in-process keys. */
  sign(record: SigningKeyRecord, input: Buffer): Buffer | Promise<Buffer>;
  /** Whether it can sign with `record` now. */
  health(record?: SigningKeyMaterial): SourceHealth | Promise<SourceHealth>;
  /** The public JWKs of the keys this source holds that a program of this installation made. */
  listPublicKeys(): Promise<JWK[]>;
}

const digestOf = (alg: SigningAlgorithm) => (alg === 'ES256' ? 'sha256' : null);

/** Signs with a record's private JWK, in process (ES256: IEEE P1363 r||s, JOSE's form). */
export function signInProcess(record: SigningKeyRecord, input: Buffer): Buffer {
  return cryptoSign(digestOf(record.alg), input, { key: privateKeyOf(record), dsaEncoding: 'ieee-p1363' });
}

/** Keys held in the signing-keys Secret. Listing needs the Secret, which the caller has: it lists none of its own. */
export class SecretKeySource implements SigningKeySource {
  readonly kind = 'secret' as const;
  generate(alg: SigningAlgorithm): Promise<SigningKeyMaterial> {
    return inProcessKeyMaterial(alg);
  }
  holds(record: SigningKeyMaterial): boolean {
    return !!record.privateJwk;
  }
  sign(record: SigningKeyRecord, input: Buffer): Buffer {
    return signInProcess(record, input);
  }
  health(): SourceHealth {
    return { up: true };
  }
  listPublicKeys(): Promise<JWK[]> {
    return Promise.resolve([]);
  }
}
