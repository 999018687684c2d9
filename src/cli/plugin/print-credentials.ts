/**
 * How a secret is shown, by create and rotate --show-secret: once, with the
 * warning that it will not be shown again, where it lives, and how to use it.
 */
import { SECRET_KEYS } from '../../api/index.ts';
import type { StoredCredentials } from './resources.ts';
import type { Session } from './session.ts';
import { text } from './terminal.ts';

export const ONLY_TIME_WARNING =
  'WARNING: this is the only time the secret is shown. Store it now (for instance in your CI\'s secret store).';

export function printCredentials(s: Session, name: string, c: StoredCredentials): void {
  const ns = s.namespace;
  text([
    `  ${SECRET_KEYS.id}:      ${c.keyId}`,
    `  ${SECRET_KEYS.secret}:  ${c.secret}`,
    '',
    ONLY_TIME_WARNING,
    '',
    `It also lives in Secret "${c.secretName}" in namespace "${ns}" (keys ${Object.values(SECRET_KEYS).join(', ')}),`,
    'for Pods and Jobs in the cluster to use with envFrom:',
    '',
    `  envFrom: [{secretRef: {name: ${c.secretName}}}]`,
    '',
    'and fetch a token with:',
    '',
    `  curl -s -u "$API_KEY_ID:$API_KEY_SECRET" -d grant_type=client_credentials "$TOKEN_URL"`,
    '',
    `(TOKEN_URL is ${c.tokenUrl}${c.audience ? `, AUDIENCE ${c.audience}` : ''}). From this machine:`,
    '',
    `  kubectl apikey token ${name} -n ${ns} --token-url http://localhost:8080/oauth/token`,
    '',
    'after: kubectl -n apikey-operator port-forward svc/apikey-operator-token 8080:8080',
    '',
  ].join('\n'));
}
