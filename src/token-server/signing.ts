/**
 * The token server's view of the signing keys Secret: which key signs now,
 * which keys verify, and the JWKS document. The controller writes the plan
 * ahead (src/shared/signing-keys.ts); this switches to a new key at its
 * `activateAt` and stops publishing a retired one at its `expireAt`, by this
 * process's clock, with no further write. Lookups are O(1) between two
 * transitions.
 *
 * An update is all or nothing: every key is imported before anything is
 * replaced, so a key that fails to import leaves the previous set in use.
 * The JWKS holds only the public members of each key (publicJwkOf), whatever
 * the Secret's publicJwk carries.
 */
import {
  activeKey, nextTransition, publicJwkOf, publishedKeys, type SigningKeySet,
} from '../shared/signing-keys.ts';
import { jwtKey, type JwtKey } from './jwt.ts';

export class SigningKeys {
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

  /** Replaces the key set, all or nothing: throws, changing nothing, when a key cannot be imported. */
  update(set: SigningKeySet | undefined, nowMs = Date.now()): void {
    const next = new Map<string, JwtKey>();
    for (const record of set?.keys ?? []) {
      next.set(record.kid, this.imported.get(record.kid) ?? jwtKey(record));
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
      this.published = new Map();
      this.jwksJson = '{"keys":[]}';
      this.recomputeAt = Infinity;
      return;
    }
    const active = activeKey(set, nowMs);
    this.current = active ? this.imported.get(active.kid) : undefined;
    const live = publishedKeys(set, nowMs);
    this.published = new Map(live.flatMap((r) => {
      const k = this.imported.get(r.kid);
      return k ? [[r.kid, k] as const] : [];
    }));
    this.jwksJson = JSON.stringify({ keys: live.map(publicJwkOf) });
    this.recomputeAt = nextTransition(set, nowMs) ?? Infinity;
  }

  /** The key that signs at `nowMs`, if any. */
  active(nowMs: number): JwtKey | undefined {
    if (nowMs >= this.recomputeAt) this.recompute(nowMs);
    return this.current;
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
