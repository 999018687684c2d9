/**
 * The PKCS#11 key source (see ../signing-source.ts): key pairs generated in
 * the token by Pkcs11Token, recorded in the signing-keys Secret by their
 * public JWK and CKA_LABEL/CKA_ID only, and destroyed in the token when the
 * plan drops them.
 */
import type { JWK } from 'jose';
import { publishedJwk, type SigningAlgorithm, type SigningKeyMaterial, type SigningKeyRecord } from '../signing-keys.ts';
import type { SigningKeySource, SourceHealth } from '../signing-source.ts';
import type { Pkcs11Token } from './token.ts';

export class Pkcs11KeySource implements SigningKeySource {
  readonly kind = 'pkcs11' as const;
  readonly token: Pkcs11Token;

  constructor(token: Pkcs11Token) {
    this.token = token;
  }

  async generate(alg: SigningAlgorithm): Promise<SigningKeyMaterial> {
    const { ref, publicJwk } = await this.token.generate(alg);
    const published = await publishedJwk(publicJwk, alg);
    return { ...published, alg, pkcs11: ref };
  }

  /** Destroys the key pair's objects in the token (only a pair this installation made: see Pkcs11Token.destroy). */
  retire(record: SigningKeyMaterial): Promise<number> {
    return record.pkcs11 ? this.token.destroy(record.pkcs11) : Promise.resolve(0);
  }

  holds(record: SigningKeyMaterial): boolean {
    return !!record.pkcs11;
  }

  sign(record: SigningKeyRecord, input: Buffer): Promise<Buffer> {
    if (!record.pkcs11) return Promise.reject(new Error(`signing key ${record.kid} is not held in a PKCS#11 token`));
    return this.token.sign(record.pkcs11, record.alg, input);
  }

  async health(record?: SigningKeyMaterial): Promise<SourceHealth> {
    const h = await this.token.probe(record?.pkcs11);
    return h.up ? { up: true } : { up: false, problem: h.problem };
  }

  async listPublicKeys(): Promise<JWK[]> {
    const keys = await this.token.listPublicKeys();
    return Promise.all(keys.map(async (k) => (await publishedJwk(k.publicJwk, k.alg)).publicJwk));
  }
}
