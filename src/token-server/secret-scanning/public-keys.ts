/**
 * The public keys a secret-scanning partner signs its reports with, fetched from one URL the
 * cluster admin configures (--secret-scanning-keys-url; GitHub's is
 * https://api.github.com/meta/public_keys/secret_scanning) in GitHub's shape:
 *
 *   {"public_keys": [{"key_identifier": "<hex>", "key": "<PEM SPKI>", "is_current": true}, ...]}
 *
 * Only ECDSA P-256 keys are kept (what GitHub signs with); anything else in the document is
 * skipped. The keys are cached for KEYS_TTL_MS and fetched again after it; a report signed with a
 * key id the cache does not hold fetches them again at once, but at most once per
 * UNKNOWN_KEY_COOLDOWN_MS (anyone can send a made-up key id), and concurrent fetches share one
 * request. A fetch that fails keeps the keys already held. Only https is fetched (a private CA via
 * --secret-scanning-ca-file), never a redirect; the document is bounded in bytes
 * (issuer-keys.ts MAX_DOCUMENT_BYTES) and in keys (MAX_KEYS) before anything in it is used.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { Agent, fetch as undiciFetch } from 'undici';
import type { Logger } from '../../shared/log.ts';
import { boundedText } from '../issuer-keys.ts';

export const KEYS_TTL_MS = 3600_000;
export const UNKNOWN_KEY_COOLDOWN_MS = 10_000;
/** After a failed fetch with no keys held, how long before the URL is tried again. */
const RETRY_AFTER_FAILURE_MS = 5_000;
const FETCH_TIMEOUT_MS = 5_000;
/** GitHub publishes a handful; a document with more is refused whole. */
export const MAX_KEYS = 32;
const MAX_KEY_ID = 128;

export interface ScanningKeysOptions {
  url: string;
  /** PEM bundle of further CAs trusted for the URL's TLS. */
  caPem?: string;
  log: Logger;
  /** Every fetch, by result (metrics). */
  observe?: (result: 'ok' | 'error') => void;
  now?: () => number;
}

/** The keys of a document, by key id; throws when the document is not one. */
export function parseKeysDocument(text: string): Map<string, KeyObject> {
  const doc = JSON.parse(text) as unknown;
  const list = doc && typeof doc === 'object' && !Array.isArray(doc) ? (doc as Record<string, unknown>).public_keys : undefined;
  if (!Array.isArray(list)) throw new Error('the document has no public_keys array');
  if (list.length > MAX_KEYS) throw new Error(`the document lists more than ${MAX_KEYS} keys`);
  const keys = new Map<string, KeyObject>();
  for (const entry of list) {
    if (!entry || typeof entry !== 'object') continue;
    const { key_identifier: id, key: pem } = entry as Record<string, unknown>;
    if (typeof id !== 'string' || id === '' || id.length > MAX_KEY_ID || typeof pem !== 'string' || pem.length > 4096) continue;
    try {
      const key = createPublicKey({ key: pem, format: 'pem' });
      if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') keys.set(id, key);
    } catch {
      // Not a PEM public key: skipped.
    }
  }
  return keys;
}

export class ScanningKeys {
  private readonly opts: ScanningKeysOptions;
  private readonly now: () => number;
  private readonly dispatcher: Agent | undefined;
  private keys = new Map<string, KeyObject>();
  private fetchedAtMs = -Infinity;
  private lastAttemptMs = -Infinity;
  private pending: Promise<void> | undefined;

  constructor(opts: ScanningKeysOptions) {
    if (!opts.url.startsWith('https://')) throw new Error('the secret-scanning keys URL must be https');
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.dispatcher = opts.caPem ? new Agent({ connect: { ca: [...rootCertificates, opts.caPem] } }) : undefined;
  }

  /**
   * The key with this id: from the cache while it is fresh; otherwise after one fetch (shared with
   * concurrent callers, rate-limited for unknown ids). `unavailable` when no key has ever been
   * fetched (the partner's URL cannot be reached): the report could not be checked at all.
   */
  async key(keyId: string): Promise<KeyObject | 'unknown' | 'unavailable'> {
    const now = this.now();
    const cached = this.keys.get(keyId);
    const stale = now - this.fetchedAtMs >= KEYS_TTL_MS;
    if (cached && !stale) return cached;
    const sinceAttempt = now - this.lastAttemptMs;
    const mayFetch = stale
      ? sinceAttempt >= (this.keys.size ? UNKNOWN_KEY_COOLDOWN_MS : RETRY_AFTER_FAILURE_MS)
      : sinceAttempt >= UNKNOWN_KEY_COOLDOWN_MS;
    if (mayFetch) await this.refresh();
    const found = this.keys.get(keyId);
    if (found) return found;
    return this.fetchedAtMs === -Infinity ? 'unavailable' : 'unknown';
  }

  private refresh(): Promise<void> {
    this.pending ??= this.fetchKeys().finally(() => { this.pending = undefined; });
    return this.pending;
  }

  private async fetchKeys(): Promise<void> {
    this.lastAttemptMs = this.now();
    const { url, log } = this.opts;
    try {
      const r = await undiciFetch(url, {
        headers: { accept: 'application/json' }, redirect: 'manual', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), dispatcher: this.dispatcher,
      });
      if (r.status !== 200) {
        await r.body?.cancel();
        throw new Error(`it answered ${r.status}`);
      }
      const keys = parseKeysDocument(await boundedText(r, url));
      if (keys.size === 0) throw new Error('it lists no ECDSA P-256 key');
      this.keys = keys;
      this.fetchedAtMs = this.now();
      this.opts.observe?.('ok');
      log.info({ url, keys: [...keys.keys()].map((k) => k.slice(0, 16)) }, 'secret-scanning public keys fetched');
    } catch (err) {
      this.opts.observe?.('error');
      log.warn({ url, why: err instanceof Error ? err.message : String(err), keysKept: this.keys.size },
        'could not fetch the secret-scanning public keys');
    }
  }
}
