/**
 * Structured logs with pino. Secrets stay out of log calls by construction
 * (callers log key ids and hashes, never secrets or tokens); as a second line,
 * known secret-bearing fields are censored and every string is scrubbed by
 * `redactSecrets`. The destination is synchronous so a short-lived process
 * never loses its last lines.
 */
import pino, { type Logger } from 'pino';
import { redactSecrets } from './redact.ts';

export type { Logger };

const REDACT_PATHS = [
  'secret', '*.secret', 'client_secret', '*.client_secret', 'password', '*.password',
  'token', '*.token', 'access_token', '*.access_token', 'authorization', '*.authorization',
  'headers.authorization', 'req.headers.authorization', 'data', '*.data', 'stringData', '*.stringData',
  'subject_token', '*.subject_token', 'privateJwk', '*.privateJwk', 'd', '*.d',
];

function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    return { type: value.name, message: redactSecrets(value.message), code: (value as { code?: unknown }).code };
  }
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrub(v, depth + 1);
  return out;
}

export function createLogger(opts: { level?: string; name?: string } = {}): Logger {
  return pino(
    {
      name: opts.name ?? 'apikey-operator',
      level: opts.level ?? process.env.APIKEY_OPERATOR_LOG_LEVEL ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: (e: unknown) => scrub(e) },
      hooks: {
        logMethod(args, method) {
          const clean = args.map((a) => scrub(a)) as Parameters<typeof method>;
          method.apply(this, clean);
        },
      },
    },
    pino.destination({ dest: 1, sync: true }),
  );
}
