/**
 * Server-issued DPoP nonces (RFC 9449 section 8), stateless so that every
 * replica accepts the nonces of every other: a nonce is an HMAC of the
 * current time step (NONCE_STEP_SECONDS) under a secret all replicas share,
 * and a nonce of the last two steps or the next one is accepted (so a nonce
 * lives two to three minutes, and replicas whose clocks differ by less than
 * a step agree).
 *
 * The shared secret is derived (HKDF, its own label) from the private half
 * of the active signing key in the signing-keys Secret, which every replica
 * reads; nonces of the keys published ahead are accepted too, so a replica
 * that switched keys a moment earlier is understood. A key whose private
 * half is in a PKCS#11 token gives no secret: this process then uses a random
 * secret of its own, and a client moving between replicas is asked for a new
 * nonce (one more round trip) when it reaches another one.
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SigningKeyRecord } from '../shared/signing-keys.ts';

export const NONCE_STEP_SECONDS = 60;
const LABEL = 'apikeys.dev/dpop-nonce';

/** Where the shared secrets come from: the active signing key, then the keys published ahead. */
export interface NonceKeySource {
  activeRecordAt(nowMs: number): SigningKeyRecord | undefined;
  pendingRecords(nowMs: number): SigningKeyRecord[];
}

export class DpopNonces {
  private readonly ownSecret = randomBytes(32);
  /** kid -> derived secret; kept small by rebuilding when the kids change. */
  private secrets = new Map<string, Buffer>();
  private cached: { step: number; secret: Buffer; value: string } | undefined;

  private readonly keys: NonceKeySource;

  constructor(keys: NonceKeySource) {
    this.keys = keys;
  }

  /** The nonce to hand out now. */
  current(nowMs: number): string {
    const step = Math.floor(nowMs / 1000 / NONCE_STEP_SECONDS);
    const secret = this.secretsAt(nowMs)[0]!;
    if (this.cached?.step === step && this.cached.secret === secret) return this.cached.value;
    const value = nonceOf(secret, step);
    this.cached = { step, secret, value };
    return value;
  }

  /** Whether `nonce` is one this server (any replica) handed out recently. */
  valid(nonce: string, nowMs: number): boolean {
    const step = Math.floor(nowMs / 1000 / NONCE_STEP_SECONDS);
    const given = Buffer.from(nonce);
    for (const secret of this.secretsAt(nowMs)) {
      for (let s = step - 2; s <= step + 1; s++) {
        const expected = Buffer.from(nonceOf(secret, s));
        if (expected.length === given.length && timingSafeEqual(expected, given)) return true;
      }
    }
    return false;
  }

  /** The secrets in use: the active key's first; this process's own when no key has a private half here. */
  private secretsAt(nowMs: number): Buffer[] {
    const records = [this.keys.activeRecordAt(nowMs), ...this.keys.pendingRecords(nowMs)]
      .filter((r): r is SigningKeyRecord => typeof r?.privateJwk?.d === 'string');
    if (records.length === 0) return [this.ownSecret];
    const out: Buffer[] = [];
    const next = new Map<string, Buffer>();
    for (const r of records) {
      const secret = this.secrets.get(r.kid)
        ?? Buffer.from(hkdfSync('sha256', Buffer.from(r.privateJwk!.d as string, 'base64url'), Buffer.alloc(0), LABEL, 32));
      next.set(r.kid, secret);
      out.push(secret);
    }
    if (next.size !== this.secrets.size || [...next.keys()].some((k) => !this.secrets.has(k))) this.secrets = next;
    return out;
  }
}

function nonceOf(secret: Buffer, step: number): string {
  return createHmac('sha256', secret).update(`${LABEL}\n${step}`).digest('base64url');
}
