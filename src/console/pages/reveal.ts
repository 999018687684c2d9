/**
 * The one view of a new secret, after Create API Key or Rotate: the key id and
 * secret with copy buttons, the curl that fetches a token, and the Secret that
 * in-cluster jobs use. Served once with Cache-Control: no-store; the console
 * forgets the secret as it renders this page.
 */
import { SECRET_KEYS } from '../../api/index.ts';
import { html, type Html } from '../html.ts';
import type { Reveal } from '../sessions.ts';
import { deploymentHref } from './deployments.ts';
import { when } from './layout.ts';

/** The seed's request, with this cluster's token URL and the key's audience; single quotes made safe for a shell. */
export function curlFor(r: Reveal): string {
  const body = JSON.stringify({ client_id: r.keyId, client_secret: r.secret, audience: r.audience, grant_type: 'client_credentials' });
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return `curl -s -X POST ${q(r.tokenUrl)} \\\n  -H 'content-type: application/json' \\\n  -d ${q(body)}`;
}

export function revealPage(r: Reveal): Html {
  const base = deploymentHref(r.namespace, r.deployment);
  const rotated = r.kind === 'rotated';
  return html`<p><a href="/">Deployments</a> › <a href="${base}">${r.deployment}</a></p>
<h1>${rotated ? `API key ${r.name} rotated` : `API key ${r.name} created`}</h1>
<p class="notice warn" role="alert"><strong>This is the only time the console shows this secret.</strong> Copy it now into the secret store of whatever uses it; reloading this page will not show it again.</p>
${rotated ? html`<p class="notice info">${r.previousValidUntil && Date.parse(r.previousValidUntil) > Date.now()
    ? html`The previous secret keeps working until ${when(r.previousValidUntil)}: update everything that uses it before then.`
    : 'The previous secret no longer works.'} The key id is unchanged.</p>` : ''}
<section class="card" aria-labelledby="creds-title">
<h2 id="creds-title">Credentials</h2>
<dl class="facts">
<dt id="key-id-label">Key ID</dt>
<dd class="secret-row"><code id="key-id" aria-labelledby="key-id-label">${r.keyId}</code> <button type="button" data-copy="key-id">Copy key id</button></dd>
<dt id="key-secret-label">Secret</dt>
<dd class="secret-row"><code id="key-secret" aria-labelledby="key-secret-label">${r.secret}</code> <button type="button" data-copy="key-secret">Copy secret</button></dd>
</dl>
</section>
<section class="card" aria-labelledby="curl-title">
<h2 id="curl-title">Fetch a token</h2>
<p>The token endpoint answers this request with a short-lived access token for audience <code>${r.audience}</code>:</p>
<pre id="curl">${curlFor(r)}</pre>
<button type="button" data-copy="curl">Copy command</button>
</section>
<section class="card" aria-labelledby="secret-title">
<h2 id="secret-title">In the cluster</h2>
<p>Jobs and Pods in namespace <code>${r.namespace}</code> read the same credentials from the Secret <code id="secret-name">${r.secretName}</code>
(keys ${Object.values(SECRET_KEYS).join(', ')}), for instance with:</p>
<pre>envFrom:
  - secretRef:
      name: ${r.secretName}</pre>
</section>
<p><a class="button" href="${base}">Back to ${r.deployment}</a></p>`;
}

export function revealGonePage(): Html {
  return html`<h1>Secret no longer shown</h1>
<p class="notice warn">The console shows a secret only once, and this one has been shown. If it was lost, rotate the key to get a new one.</p>
<p><a class="button" href="/">Deployments</a></p>`;
}
