/**
 * Allowed networks of an API key: its spec.allowedNetworks, edited as a list
 * of CIDRs (checked as the CRD checks them, then again by the apiserver). The
 * Deployment's own list is shown beside it, since the key may be used from
 * what both allow.
 */
import type { ApiKey, Deployment } from '../../api/index.ts';
import { html, type Html } from '../html.ts';
import type { FieldErrors } from '../key-form.ts';
import { networksField } from './add-key.ts';
import { keyHref } from './deployment.ts';
import { deploymentHref } from './deployments.ts';
import { errorNotice } from './layout.ts';

export interface KeyNetworksView {
  key: ApiKey;
  /** Undefined when the person may not read it. */
  deployment: Deployment | undefined;
  /** The list as typed (after a refusal) or as stored. */
  value: string;
  errors: FieldErrors;
  csrf: string;
}

export function keyNetworksPage(v: KeyNetworksView): Html {
  const ns = v.key.metadata.namespace!;
  const dep = v.key.spec.deploymentRef.name;
  const name = v.key.metadata.name!;
  const depList = v.deployment?.spec.allowedNetworks ?? [];
  return html`<p><a href="/">Deployments</a> › <a href="${deploymentHref(ns, dep)}">${dep}</a></p>
<h1>Allowed networks of ${name}</h1>
<p class="muted">A request from elsewhere is refused as if the secret were wrong. Tokens the key already issued keep working until they expire.</p>
<p>Deployment ${dep} allows: ${v.deployment === undefined ? 'unknown (you may not read the Deployment)' : depList.length ? depList.join(', ') : 'anywhere'}.</p>
${errorNotice(v.errors.form)}
<form class="card" method="post" action="${keyHref(ns, dep, name)}/networks" novalidate>
<input type="hidden" name="csrf" value="${v.csrf}">
${networksField(v.value, v.errors)}
<div class="actions"><button type="submit" class="primary">Save</button> <a class="button" href="${deploymentHref(ns, dep)}">Cancel</a></div>
</form>`;
}
