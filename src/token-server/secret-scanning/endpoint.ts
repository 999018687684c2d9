/**
 * POST /secret-scanning/github: GitHub's secret-scanning partner program (or any partner that
 * speaks its protocol) tells this server that secrets were found in public. Off unless
 * --secret-scanning-keys-url is set.
 *
 * In this order, each step refusing the whole report before the next:
 * 1. both signature headers present and well formed (else 401, nothing else read);
 * 2. the signing key known, fetched from the keys URL if need be (public-keys.ts; unknown: 401;
 *    the URL never reachable: 503, so the partner retries);
 * 3. the signature valid over the raw body (else 401);
 * 4. the body a report (report.ts; else 400).
 * Then every match is labelled: `true_positive` when it is, checksum and all, a secret one of
 * the served keys has or had (its current or previous secret, or one a report named before),
 * `false_positive` otherwise (not our format, a bad checksum, no such key). A true positive that is
 * a key's current or previous secret, and not reported yet, marks the key compromised (marker.ts):
 * the key refuses tokens, and its tokens die, as soon as this server's watch sees the mark. The
 * same report again finds the mark there and writes nothing; after the owner rotated, it names a
 * secret that is no longer the key's current or previous one and writes nothing either.
 *
 * The answer names each match by the hex SHA-256 of its token (`token_hash`), never the token.
 * A mark that cannot be written (the apiserver unreachable) answers 503 so the partner sends
 * the report again; every other failure is the sender's and a 4xx.
 */
import { createHash } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { type CompromiseReport, safeReportUrl } from '../../api/compromise.ts';
import { hashSecret, isWellFormedSecret } from '../../keys/format.ts';
import type { Logger } from '../../shared/log.ts';
import type { KeyStore } from '../key-store.ts';
import { reportedSecret, type KeyEntry } from '../keys.ts';
import type { TokenServerMetrics } from '../metrics.ts';
import type { LeakMarker } from './marker.ts';
import { parseReport, ReportRefused, signatureHeaders, signatureValid } from './report.ts';

export const SECRET_SCANNING_PATH = '/secret-scanning/github';

/** Marks written at once to the apiserver: a report lists at most MAX_MATCHES secrets. */
const MARK_CONCURRENCY = 4;

export type Label = 'true_positive' | 'false_positive';

export interface ScanAnswer {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

export interface SecretScanningOptions {
  keys: { key(keyId: string): Promise<KeyObject | 'unknown' | 'unavailable'> };
  store: KeyStore;
  marker: LeakMarker;
  log: Logger;
  metrics?: Pick<TokenServerMetrics, 'scanMatch'>;
}

const error = (status: number, err: string, description: string, headers?: Record<string, string>): ScanAnswer =>
  ({ status, body: JSON.stringify({ error: err, error_description: description }), headers });

export class SecretScanning {
  private readonly opts: SecretScanningOptions;

  constructor(opts: SecretScanningOptions) {
    this.opts = opts;
  }

  /** The answer to one report: its headers and its raw body. Never throws. */
  async answer(headers: Record<string, string | string[] | undefined>, body: Buffer, nowMs: number): Promise<ScanAnswer> {
    try {
      const { keyId, signature } = signatureHeaders(headers);
      const key = await this.opts.keys.key(keyId);
      if (key === 'unavailable') {
        return error(503, 'temporarily_unavailable', 'the public keys of the secret-scanning partner cannot be fetched now; retry later',
          { 'retry-after': '30' });
      }
      if (key === 'unknown') throw new ReportRefused('bad_signature', 'Github-Public-Key-Identifier names no known public key');
      if (!signatureValid(body, signature, key)) throw new ReportRefused('bad_signature', 'the signature does not verify');
      const matches = parseReport(body);
      return await this.act(matches, nowMs);
    } catch (err) {
      if (err instanceof ReportRefused) {
        this.opts.log.info({ code: err.code, why: err.message }, 'secret-scanning report refused');
        return error(err.status, err.status === 401 ? 'invalid_signature' : 'invalid_request', err.message);
      }
      this.opts.log.error({ err }, 'unexpected error while answering a secret-scanning report');
      return error(503, 'temporarily_unavailable', 'the report could not be acted on now; retry later', { 'retry-after': '30' });
    }
  }

  private async act(matches: ReturnType<typeof parseReport>, nowMs: number): Promise<ScanAnswer> {
    const marks = new Map<string, { key: KeyEntry; report: CompromiseReport }>();
    const answer = matches.map((m) => {
      const label = this.label(m.token, (key, secretHash) => {
        const id = `${key.uid}\n${secretHash}`;
        if (!marks.has(id)) {
          const url = safeReportUrl(m.url);
          marks.set(id, { key, report: { secretHash, reportedAt: new Date(nowMs).toISOString(), source: 'secret-scanning', ...(url ? { url } : {}) } });
        }
      });
      this.opts.metrics?.scanMatch(label);
      return { token_hash: createHash('sha256').update(m.token, 'utf8').digest('hex'), token_type: m.type, label };
    });
    const todo = [...marks.values()];
    let failed = 0;
    for (let i = 0; i < todo.length; i += MARK_CONCURRENCY) {
      const results = await Promise.allSettled(todo.slice(i, i + MARK_CONCURRENCY).map(({ key, report }) => this.opts.marker.mark(key, report)));
      failed += results.filter((r) => r.status === 'rejected').length;
    }
    if (failed > 0) {
      return error(503, 'temporarily_unavailable', `${failed} of the reported keys could not be revoked now; send the report again`,
        { 'retry-after': '10' });
    }
    return { status: 200, body: JSON.stringify(answer) };
  }

  /** A match's label; `revoke` is called for each key whose current or previous secret it is, not reported yet. */
  private label(token: string, revoke: (key: KeyEntry, secretHash: string) => void): Label {
    if (!isWellFormedSecret(token)) return 'false_positive';
    const secretHash = hashSecret(token);
    const keys = this.opts.store.keysWithSecretHash(secretHash);
    for (const key of keys) {
      const which = reportedSecret(key, secretHash);
      if ((which === 'current' || which === 'previous') && !key.reportedHashes.includes(secretHash)) revoke(key, secretHash);
    }
    return keys.length ? 'true_positive' : 'false_positive';
  }
}
