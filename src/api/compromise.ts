/**
 * A report that an ApiKey's secret leaked, and how it travels to the controller.
 *
 * Whoever learns of a leak (the token server's secret-scanning endpoint, a person with
 * `kubectl apikey revoke` or the console) writes ONE annotation on the ApiKey,
 * `apikeys.dev/compromised`, whose value is a small JSON object naming the secret by its hash
 * (`sha256:`..., as status.secretHash; never the secret) and saying when, who and where. The
 * annotation is a request, not the record: the controller turns a report that names the key's
 * current secret into status.compromise and the condition Ready=False, reason Compromised (which
 * only the operator may write, so removing the annotation un-revokes nothing), and a report that
 * names the previous secret ends its grace period. The token server refuses a key from the moment
 * it sees either (the annotation in its watch, or the status), without waiting for the controller.
 *
 * A report names a hash, not "the key": once the owner rotated, the same report (a replay, or the
 * annotation left in place) names a secret that is no longer the key's and changes nothing.
 *
 * Everything here is bounded and strict: a value that does not parse is ignored by every reader
 * (the controller and the token server alike), never half-read.
 */
import { SECRET_HASH_PATTERN } from '../keys/format.ts';
import { redactSecrets } from '../shared/redact.ts';

export const COMPROMISED_ANNOTATION = 'apikeys.dev/compromised';

/** Who reported it: the secret-scanning endpoint, or a person through the plugin or the console. */
export const REPORT_SOURCES = ['secret-scanning', 'kubectl', 'console'] as const;
export type ReportSource = (typeof REPORT_SOURCES)[number];

/** The longest URL kept (the event and the status show it); longer ones are cut, never refused. */
export const MAX_REPORT_URL = 512;
/** The longest reason a person may give. */
export const MAX_REPORT_REASON = 256;
/** The longest annotation value read: a real one is well under 1 KiB. */
const MAX_ANNOTATION_VALUE = 2048;

export interface CompromiseReport {
  /** `sha256:` + base64url of the SHA-256 of the leaked secret: which secret, never the secret. */
  secretHash: string;
  /** When it was reported (RFC 3339). */
  reportedAt: string;
  source: ReportSource;
  /** Where the secret was found (secret scanning's `url`), made safe by `safeReportUrl`. */
  url?: string;
  /** A person's words (`kubectl apikey revoke --reason`), printable characters only. */
  reason?: string;
}

/** Printable text only: control characters (newlines, ANSI escapes, bidi overrides) become a space, then cut to `max`. */
export function printable(s: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  const clean = redactSecrets(s.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, ' ')).trim();
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

/**
 * An http(s) URL as WHATWG URL normalises it (percent-escaped, no spaces or control characters),
 * without user information and with anything that looks like a secret or a token masked
 * (shared/redact.ts), cut to MAX_REPORT_URL; undefined for anything else (a `javascript:`
 * URL, a relative path, text). What a report says it found is shown to people, so it is never
 * shown raw.
 */
export function safeReportUrl(raw: unknown): string | undefined {
  if (typeof raw !== 'string' || raw.length > 8192) return undefined;
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    return undefined;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return undefined;
  u.username = '';
  u.password = '';
  // A URL may quote the very secret (a link to a search for it): never kept.
  const href = redactSecrets(u.href);
  return href.length > MAX_REPORT_URL ? `${href.slice(0, MAX_REPORT_URL - 1)}…` : href;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** The report an annotation value holds, or undefined when it holds none that is well formed. */
export function parseCompromiseReport(value: string | undefined): CompromiseReport | undefined {
  if (value === undefined || value.length > MAX_ANNOTATION_VALUE) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.secretHash !== 'string' || !SECRET_HASH_PATTERN.test(o.secretHash)) return undefined;
  if (typeof o.reportedAt !== 'string' || !RFC3339.test(o.reportedAt) || Number.isNaN(Date.parse(o.reportedAt))) return undefined;
  if (!REPORT_SOURCES.includes(o.source as ReportSource)) return undefined;
  const report: CompromiseReport = { secretHash: o.secretHash, reportedAt: o.reportedAt, source: o.source as ReportSource };
  if (o.url !== undefined) {
    const url = safeReportUrl(o.url);
    if (url === undefined) return undefined;
    report.url = url;
  }
  if (o.reason !== undefined) {
    if (typeof o.reason !== 'string') return undefined;
    const reason = printable(o.reason, MAX_REPORT_REASON);
    if (reason) report.reason = reason;
  }
  return report;
}

/** The annotation value for `report` (its url and reason made safe first). */
export function compromiseAnnotation(report: CompromiseReport): string {
  const out: CompromiseReport = { secretHash: report.secretHash, reportedAt: report.reportedAt, source: report.source };
  const url = report.url === undefined ? undefined : safeReportUrl(report.url);
  if (url) out.url = url;
  const reason = report.reason === undefined ? '' : printable(report.reason, MAX_REPORT_REASON);
  if (reason) out.reason = reason;
  return JSON.stringify(out);
}

/** The report on an ApiKey's annotations, if any. */
export function reportOn(annotations: Record<string, string> | undefined): CompromiseReport | undefined {
  return parseCompromiseReport(annotations?.[COMPROMISED_ANNOTATION]);
}

/** How a report reads in an event, a condition and the plugin: who, and where it was found. */
export function describeReport(r: Pick<CompromiseReport, 'source' | 'url' | 'reason' | 'reportedAt'>): string {
  const who = r.source === 'secret-scanning' ? 'secret scanning' : r.source === 'kubectl' ? 'kubectl apikey revoke' : 'the console';
  const where = r.url ? ` found at ${r.url}` : '';
  const why = r.reason ? ` (${r.reason})` : '';
  return `reported leaked by ${who}${where} at ${r.reportedAt}${why}`;
}
