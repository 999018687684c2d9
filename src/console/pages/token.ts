/** /token: a temporary token for a Deployment with the person's own identity (RFC 8693 token exchange). */
import type { Deployment } from '../../api/index.ts';
import { attr, html, type Html } from '../html.ts';
import { errorNotice, when } from './layout.ts';

export interface TokenView {
  deployments: Deployment[];
  chosen?: string;
  scope?: string;
  csrf: string;
  /** Why this person cannot get a token here (their credential is no bearer token, no token URL). */
  unavailable?: string;
  error?: string;
  listError?: string;
  result?: { token: string; scope: string; expiresAt: string; deployment: string };
}

export function tokenPage(v: TokenView): Html {
  const off = v.unavailable !== undefined;
  return html`<h1>Temporary token</h1>
<p class="muted">A short-lived access token for one Deployment, issued for you rather than for an API key: for a single call by hand. It lasts at most 24 hours.</p>
${v.unavailable ? html`<p class="notice warn" role="alert">${v.unavailable}</p>` : ''}
${errorNotice(v.listError)}
${errorNotice(v.error)}
<form class="card" method="post" action="/token">
<input type="hidden" name="csrf" value="${v.csrf}">
<label for="deployment">Deployment</label>
<select id="deployment" name="deployment"${attr('disabled', off)}>
${v.deployments.map((d) => {
    const id = `${d.metadata.namespace}/${d.metadata.name}`;
    return html`<option value="${id}"${attr('selected', id === v.chosen)}>${id}</option>`;
  })}
</select>
<label for="scope">Scope</label>
<select id="scope" name="scope"${attr('disabled', off)}>
<option value="">everything you may do</option>
<option value="deploy"${attr('selected', v.scope === 'deploy')}>deploy</option>
<option value="read"${attr('selected', v.scope === 'read')}>read</option>
</select>
<div class="actions"><button type="submit" class="primary"${attr('disabled', off || v.deployments.length === 0)}>Get token</button></div>
</form>
${v.result ? html`<section class="card" aria-labelledby="token-title">
<h2 id="token-title">Token for ${v.result.deployment}</h2>
<dl class="facts">
<dt>Scope</dt><dd id="token-scope">${v.result.scope}</dd>
<dt>Expires</dt><dd id="token-expiry">${when(v.result.expiresAt)}</dd>
</dl>
<pre id="token">${v.result.token}</pre>
<button type="button" data-copy="token">Copy token</button>
<p class="hint">Use it as <code>Authorization: Bearer …</code>. The console does not keep it.</p>
</section>` : ''}`;
}
