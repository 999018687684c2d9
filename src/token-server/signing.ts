/**
 * The token server's view of the signing keys Secret: which key signs now,
 * which keys verify, and the JWKS document. The controller writes the plan
 * ahead (src/shared/signing-keys.ts); this switches to a new key at its
 * `activateAt` and stops publishing a retired one at its `expireAt`, by this
 * process's clock, with no further write. Lookups are O(1) between two
 * transitions.
 */
import {
  activeKey, nextTransition, publishedKeys, type SigningKeySet,
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

  /** Replaces the key set (undefined when the Secret is gone). */
  update(set: SigningKeySet | undefined, nowMs = Date.now()): void {
    this.set = set;
    const next = new Map<string, JwtKey>();
    for (const record of set?.keys ?? []) {
      next.set(record.kid, this.imported.get(record.kid) ?? jwtKey(record));
    }
    this.imported = next;
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
    this.jwksJson = JSON.stringify({ keys: live.map((r) => r.publicJwk) });
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
