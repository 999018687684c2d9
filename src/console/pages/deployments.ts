/** The first page: the Deployments (apikeys.dev) the person may list, with their key counts and Ready. */
import type { Deployment } from '../../api/index.ts';
import { html, type Html } from '../html.ts';
import { readyBadge } from './badges.ts';
import { errorNotice } from './layout.ts';

export interface DeploymentsView {
  deployments: Deployment[];
  /** The namespace shown; undefined: all the person can see. */
  namespace?: string;
  /** Why the list is narrower than asked, or empty (a refusal). */
  notice?: string;
  error?: string;
}

export function deploymentHref(ns: string, name: string): string {
  return `/deployments/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
}

export function deploymentsPage(v: DeploymentsView): Html {
  const rows = v.deployments.map((d) => html`<tr>
<td>${d.metadata.namespace}</td>
<td><a href="${deploymentHref(d.metadata.namespace!, d.metadata.name!)}">${d.metadata.name}</a></td>
<td>${d.spec.description ?? ''}</td>
<td>${d.status?.apiKeys ?? 0}</td>
<td>${readyBadge(d)}</td>
</tr>`);
  return html`<h1>Deployments</h1>
<form class="card filters" method="get" action="/" role="search">
<div><label for="namespace">Namespace</label>
<input type="text" id="namespace" name="namespace" value="${v.namespace ?? ''}" placeholder="all namespaces you may see" aria-describedby="namespace-hint"></div>
<button type="submit">Show</button>
<p id="namespace-hint" class="hint">Leave empty for every namespace you may list.</p>
</form>
${v.notice ? html`<p class="notice warn">${v.notice}</p>` : ''}
${errorNotice(v.error)}
<section class="card" aria-labelledby="deployments-title">
<div class="card-head"><h2 id="deployments-title">${v.namespace ? `In namespace ${v.namespace}` : 'In all namespaces'}</h2></div>
${v.deployments.length === 0
    ? html`<p class="muted">${v.error ? 'Nothing to show.' : 'No Deployments here.'}</p>`
    : html`<div class="table-wrap"><table>
<thead><tr><th scope="col">Namespace</th><th scope="col">Name</th><th scope="col">Description</th><th scope="col">API Keys</th><th scope="col">Ready</th></tr></thead>
<tbody>${rows}</tbody></table></div>`}
</section>`;
}
