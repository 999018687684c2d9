/**
 * The token server's view of the signing keys Secret: which key signs now,
 * which keys verify, and the JWKS document. The controller writes the plan
 * ahead (src/shared/signing-keys.ts); this switches to a new key at its
 * `activateAt` and stops publishing a retired one at its `expireAt`, by this
 * process's clock, with no further write. Lookups are O(1) between two
 * transitions.
 *
 * A key whose private half is in a PKCS#11 token (record.pkcs11) signs
 * through the `remote` source given with `useRemote`; without one it only
 * verifies and is published, and `active` says there is no key to sign
 * with (the server is then not ready). A remote failure becomes
 * `temporarily_unavailable` (503, Retry-After), never a 500.
 *
 * An update is all or nothing: every key is imported before anything is
 * replaced, so a key that fails to import leaves the previous set in use.
 * The JWKS holds only the public members of each key (publicJwkOf), whatever
 * the Secret's publicJwk carries.
 */
import {
  activeKey, nextTransition, publicJwkOf, publishedKeys, type SigningKeyRecord, type SigningKeySet,
} from '../shared/signing-keys.ts';
import type { SigningKeySource } from '../shared/signing-source.ts';
import { canSign, jwtKey, type JwtKey, type RemoteSigner } from './jwt.ts';
import { TemporarilyUnavailable } from './oauth-errors.ts';

/** Signs with `record` through `source`; any failure is a 503 the client may retry. */
function remoteSigner(source: SigningKeySource, record: SigningKeyRecord): RemoteSigner {
  return async (input) => {
    try {
      return await source.sign(record, input);
    } catch {
      // The source logged and counted the failure (and is reconnecting); the client only needs to retry.
      throw new TemporarilyUnavailable('the signing key\'s token is unavailable; retry shortly', 'signer_unavailable');
    }
  };
}

export class SigningKeys {
  private remote: SigningKeySource | undefined;
  private activeRecord: SigningKeyRecord | undefined;
  private set: SigningKeySet | undefined;
  private imported = new Map<string, JwtKey>();
  private current: JwtKey | undefined;
  private published = new Map<string, JwtKey>();
  private jwksJson = '{"keys":[]}';
  /** When `current`/`published` must be computed again. */
  private recomputeAt = Infinity;

  /**
   * Why the keys in use are not those of the Secret in the API (malformed, or deleted), while they are
   * not: the last good keys are kept meanwhile (the gauge apikey_operator_signing_keys_invalid).
   */
  problem: string | undefined;

  /** Signs the keys that are not in the Secret (the PKCS#11 source); set before the first update. */
  useRemote(source: SigningKeySource): void {
    this.remote = source;
    this.imported = new Map();
    const { problem } = this;
    this.update(this.set);
    this.problem = problem;
  }

  /** Replaces the key set, all or nothing: throws, changing nothing, when a key cannot be imported. */
  update(set: SigningKeySet | undefined, nowMs = Date.now()): void {
    const next = new Map<string, JwtKey>();
    const remote = this.remote;
    for (const record of set?.keys ?? []) {
      next.set(record.kid, this.imported.get(record.kid)
        ?? jwtKey(record, remote?.holds(record) ? remoteSigner(remote, record) : undefined));
    }
    this.set = set;
    this.imported = next;
    this.problem = undefined;
    this.recompute(nowMs);
  }

  private recompute(nowMs: number): void {
    const set = this.set;
    if (!set) {
      this.current = undefined;
      this.activeRecord = undefined;
      this.published = new Map();
      this.jwksJson = '{"keys":[]}';
      this.recomputeAt = Infinity;
      return;
    }
    const active = activeKey(set, nowMs);
    const current = active ? this.imported.get(active.kid) : undefined;
    this.current = current && canSign(current) ? current : undefined;
    this.activeRecord = this.current ? active : undefined;
    const live = publishedKeys(set, nowMs);
    this.published = new Map(live.flatMap((r) => {
      const k = this.imported.get(r.kid);
      return k ? [[r.kid, k] as const] : [];
    }));
    this.jwksJson = JSON.stringify({ keys: live.map(publicJwkOf) });
    this.recomputeAt = nextTransition(set, nowMs) ?? Infinity;
  }

  /** The key that signs at `nowMs`, if any (and if this server can sign with it). */
  active(nowMs: number): JwtKey | undefined {
    if (nowMs >= this.recomputeAt) this.recompute(nowMs);
    return this.current;
  }

  /** The keys published but not yet signing: a readiness probe checks them before they activate. */
  pendingRecords(nowMs: number): SigningKeyRecord[] {
    return (this.set?.keys ?? []).filter((k) => Date.parse(k.activateAt) > nowMs);
  }

  /** The record of the key that signs at `nowMs` (what a readiness probe asks the remote source about). */
  activeRecordAt(nowMs: number): SigningKeyRecord | undefined {
    if (nowMs >= this.recomputeAt) this.recompute(nowMs);
    return this.activeRecord;
  }

  /** A published key by kid: tokens signed with it may still be live. */
  verifier(kid: string, nowMs: number): JwtKey | undefined {
    if (nowMs >= this.recomputeAt) this.recompute(nowMs);
    return this.published.get(kid);
  }

  /** The JWKS document (public members only). */
  jwks(nowMs: number): string {
    if (nowMs >= this.recomputeAt) this.recompute(nowMs);
    return this.jwksJson;
  }

  get size(): number {
    return this.published.size;
  }
}
