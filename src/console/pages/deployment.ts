/**
 * A Deployment's page: its facts, and the API Keys section with each key's
 * status and its Edit menu (Rotate, Revoke API Key, Delete API Key). Buttons the person may
 * not use are disabled, with the reason next to them.
 */
import type { ApiKey, Deployment } from '../../api/index.ts';
import { attr, html, Html } from '../html.ts';
import { expiryBadge, readyBadge } from './badges.ts';
import { deploymentHref } from './deployments.ts';
import { errorNotice, when } from './layout.ts';

export interface Rights {
  create: boolean;
  rotate: boolean;
  delete: boolean;
  readSecrets: boolean;
}

export interface DeploymentView {
  deployment: Deployment;
  keys: ApiKey[];
  rights: Rights;
  csrf: string;
  /** Why the keys cannot be listed. */
  keysError?: string;
  /** How often the page asks for fresh key status, in ms. */
  pollMs: number;
}

export const keyHref = (ns: string, dep: string, key: string) => `${deploymentHref(ns, dep)}/keys/${encodeURIComponent(key)}`;

/** The cells that live updates rewrite, as HTML; the JSON endpoint sends the same. */
export function liveCells(k: ApiKey): Record<string, string> {
  return {
    ready: readyBadge(k).text,
    lastUsed: when(k.status?.lastUsedAt).text,
    lastRotation: when(k.status?.lastRotationTime).text,
    keyId: html`<code>${k.status?.keyId ?? '—'}</code>`.text,
    expires: expiryBadge(k).text,
  };
}

function cell(field: string, content: string): Html {
  return html`<td data-field="${field}">${new Html(content)}</td>`;
}

function editMenu(ns: string, dep: string, k: ApiKey, v: DeploymentView): Html {
  const name = k.metadata.name!;
  return html`<details class="menu"><summary>Edit</summary>
<div class="menu-body">
<form method="post" action="${keyHref(ns, dep, name)}/rotate"><input type="hidden" name="csrf" value="${v.csrf}">
<button type="submit"${attr('disabled', !v.rights.rotate)}>Rotate</button></form>
<form method="get" action="${keyHref(ns, dep, name)}/revoke">
<button type="submit" class="danger"${attr('disabled', !v.rights.rotate)}>Revoke API Key</button></form>
<form method="get" action="${keyHref(ns, dep, name)}/networks">
<button type="submit"${attr('disabled', !v.rights.rotate)}>Allowed networks</button></form>
<form method="get" action="${keyHref(ns, dep, name)}/delete">
<button type="submit" class="danger"${attr('disabled', !v.rights.delete)}>Delete API Key</button></form>
</div></details>`;
}

export function deploymentPage(v: DeploymentView): Html {
  const d = v.deployment;
  const ns = d.metadata.namespace!;
  const dep = d.metadata.name!;
  const rows = v.keys.map((k) => {
    const c = liveCells(k);
    return html`<tr data-key="${k.metadata.name}">
<th scope="row">${k.metadata.name}</th>
<td>${k.spec.description ?? ''}</td>
${cell('keyId', c.keyId!)}
<td>${(k.spec.permissions ?? ['deploy']).join(', ')}</td>
<td data-field="allowedNetworks">${k.spec.allowedNetworks?.length ? k.spec.allowedNetworks.join(', ') : 'anywhere'}</td>
${cell('ready', c.ready!)}
${cell('lastUsed', c.lastUsed!)}
${cell('lastRotation', c.lastRotation!)}
${cell('expires', c.expires!)}
<td>${editMenu(ns, dep, k, v)}</td>
</tr>`;
  });
  const missing = [
    !v.rights.create && `create ApiKeys in ${ns}`,
    !v.rights.rotate && `update ApiKeys in ${ns} (Rotate, Revoke, Allowed networks)`,
    !v.rights.delete && `delete ApiKeys in ${ns}`,
  ].filter((x): x is string => typeof x === 'string');
  return html`<p><a href="/">Deployments</a> › ${ns}</p>
<h1>Deployment ${dep}</h1>
<section class="card" aria-label="About this Deployment">
<dl class="facts">
<dt>Namespace</dt><dd>${ns}</dd>
<dt>Description</dt><dd>${d.spec.description ?? '—'}</dd>
<dt>Audiences</dt><dd>${(d.spec.audiences ?? []).join(', ') || 'the operator\'s default'}</dd>
<dt>Allowed networks</dt><dd>${(d.spec.allowedNetworks ?? []).join(', ') || 'anywhere'}</dd>
<dt>Max token lifetime</dt><dd>${d.spec.maxTokenTTL ?? '24h'}</dd>
<dt>Ready</dt><dd>${readyBadge(d)}</dd>
</dl>
</section>
<section class="card" aria-labelledby="keys-title">
<div class="card-head"><h2 id="keys-title">API Keys</h2>
<form method="get" action="${deploymentHref(ns, dep)}/keys/new"><button type="submit" class="primary"${attr('disabled', !v.rights.create)}>Add API Key</button></form></div>
${missing.length ? html`<p class="notice warn">You may not ${missing.join('; ')}: those buttons are disabled.</p>` : ''}
${v.rights.create && !v.rights.readSecrets ? html`<p class="notice warn">You may not get Secrets in ${ns}: a new key would be created, but the console could not show you its secret.</p>` : ''}
${errorNotice(v.keysError)}
${v.keys.length === 0 && !v.keysError ? html`<p class="muted">No API keys yet.</p>` : ''}
${v.keys.length ? html`<div class="table-wrap"><table data-live="${deploymentHref(ns, dep).replace('/deployments/', '/api/deployments/')}/keys" data-interval="${v.pollMs}">
<caption class="sr-only">API keys of ${dep}; Ready and Last used update by themselves</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Description</th><th scope="col">Key ID</th><th scope="col">Permissions</th><th scope="col">Allowed networks</th><th scope="col">Ready</th><th scope="col">Last used</th><th scope="col">Last rotation</th><th scope="col">Expires</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
<tbody>${rows}</tbody></table></div>` : ''}
</section>`;
}
