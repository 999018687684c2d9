/**
 * A second line of defence: secrets are kept out of logs, events, statuses
 * and errors by construction, and anything that still looks like an API key
 * secret (plain, or base64 as in a Secret's data) or a JWT is masked here.
 */
const SECRET = /aks_[0-9A-Za-z]{20,}/g;
// base64 of "aks_" starts with "YWtzX"; a Secret's data carries it that way.
const SECRET_B64 = /YWtzX[0-9A-Za-z+/=]{20,}/g;
const JWT = /eyJ[0-9A-Za-z_-]{8,}\.eyJ[0-9A-Za-z_-]{8,}\.[0-9A-Za-z_-]{8,}/g;
const PEM = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g;

export function redactSecrets(text: string): string {
  return text
    .replace(SECRET, 'aks_[REDACTED]')
    .replace(SECRET_B64, '[REDACTED]')
    .replace(JWT, '[REDACTED-JWT]')
    .replace(PEM, '[REDACTED-PRIVATE-KEY]');
}
