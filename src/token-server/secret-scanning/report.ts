/**
 * A secret-scanning report as GitHub's partner program sends it, and its signature.
 *
 * The body is a JSON array of matches, `[{"token", "type", "url", "source"}, ...]`, signed as raw
 * bytes: the header Github-Public-Key-Signature holds the base64 of a DER-encoded ECDSA P-256
 * signature over SHA-256 of the body, made with the key that Github-Public-Key-Identifier names.
 * The signature is checked over the exact bytes received, before the body is parsed at all.
 *
 * Parsing is strict and bounded: at most MAX_MATCHES entries, each an object whose `token` is a
 * string of at most MAX_TOKEN characters; `type`, `url` and `source` are optional strings, kept
 * only within their bounds. Anything else refuses the whole report (ReportRefused), which the
 * endpoint answers 400: a partner sends exactly this shape, and a half-read report would hide a
 * bug on either side.
 */
import { verify, type KeyObject } from 'node:crypto';

/** GitHub sends "one or more" matches per message; this is far above what it batches. */
export const MAX_MATCHES = 100;
/** The body budget: MAX_MATCHES matches with long URLs fit well within it. */
export const MAX_REPORT_BYTES = 128 * 1024;
/** A token longer than this is nobody's secret (ours are 53 characters). */
const MAX_TOKEN = 1024;
const MAX_TYPE = 128;
const MAX_SOURCE = 64;
const MAX_URL = 8192;
/** A DER ECDSA P-256 signature is at most 72 bytes: 96 base64 characters; some slack for padding variants. */
const MAX_SIGNATURE_CHARS = 256;
const MAX_KEY_ID_CHARS = 128;
const KEY_ID = /^[A-Za-z0-9_.:=+/-]+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export interface ReportedMatch {
  token: string;
  /** The partner's name for the secret's type; echoed back as `token_type`. */
  type: string;
  url: string | undefined;
  source: string | undefined;
}

/** A report refused whole: `why` is safe to send back (it never quotes the body). */
export class ReportRefused extends Error {
  readonly status: 400 | 401;
  readonly code: 'unsigned' | 'bad_signature' | 'malformed';
  constructor(code: ReportRefused['code'], why: string) {
    super(why);
    this.name = 'ReportRefused';
    this.code = code;
    this.status = code === 'malformed' ? 400 : 401;
  }
}

/** The signing key's id and the signature, from the headers; ReportRefused when either is missing or malformed. */
export function signatureHeaders(headers: Record<string, string | string[] | undefined>): { keyId: string; signature: Buffer } {
  const keyId = headers['github-public-key-identifier'];
  const sig = headers['github-public-key-signature'];
  if (keyId === undefined || sig === undefined) {
    throw new ReportRefused('unsigned', 'the headers Github-Public-Key-Identifier and Github-Public-Key-Signature are required');
  }
  if (typeof keyId !== 'string' || keyId.length === 0 || keyId.length > MAX_KEY_ID_CHARS || !KEY_ID.test(keyId)) {
    throw new ReportRefused('unsigned', 'Github-Public-Key-Identifier is not a key identifier');
  }
  if (typeof sig !== 'string' || sig.length === 0 || sig.length > MAX_SIGNATURE_CHARS || !BASE64.test(sig)) {
    throw new ReportRefused('bad_signature', 'Github-Public-Key-Signature is not base64');
  }
  return { keyId, signature: Buffer.from(sig, 'base64') };
}

/** True when `signature` (DER) is `key`'s ECDSA P-256 SHA-256 signature of exactly `body`. */
export function signatureValid(body: Buffer, signature: Buffer, key: KeyObject): boolean {
  try {
    return verify('sha256', body, { key, dsaEncoding: 'der' }, signature);
  } catch {
    // A signature that is not DER at all.
    return false;
  }
}

const optionalString = (o: Record<string, unknown>, name: string, max: number, i: number): string | undefined => {
  const v = o[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ReportRefused('malformed', `match ${i}: ${name} must be a string`);
  if (v.length > max) throw new ReportRefused('malformed', `match ${i}: ${name} is longer than ${max} characters`);
  return v;
};

/** The matches of a (signed) report body; ReportRefused when it is not a report. */
export function parseReport(body: Buffer | string): ReportedMatch[] {
  let doc: unknown;
  try {
    doc = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch {
    throw new ReportRefused('malformed', 'the body is not JSON');
  }
  if (!Array.isArray(doc)) throw new ReportRefused('malformed', 'the body must be a JSON array of matches');
  if (doc.length === 0) throw new ReportRefused('malformed', 'the report lists no match');
  if (doc.length > MAX_MATCHES) throw new ReportRefused('malformed', `the report lists more than ${MAX_MATCHES} matches`);
  return doc.map((m: unknown, i) => {
    if (!m || typeof m !== 'object' || Array.isArray(m)) throw new ReportRefused('malformed', `match ${i} is not an object`);
    const o = m as Record<string, unknown>;
    if (typeof o.token !== 'string' || o.token === '') throw new ReportRefused('malformed', `match ${i}: token must be a non-empty string`);
    if (o.token.length > MAX_TOKEN) throw new ReportRefused('malformed', `match ${i}: token is longer than ${MAX_TOKEN} characters`);
    return {
      token: o.token,
      type: optionalString(o, 'type', MAX_TYPE, i) ?? '',
      url: optionalString(o, 'url', MAX_URL, i),
      source: optionalString(o, 'source', MAX_SOURCE, i),
    };
  });
}
