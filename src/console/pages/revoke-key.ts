/**
 * Revoke API Key: the person reports the key's secret leaked (api/compromise.ts), confirming by
 * typing the key's name (checked again on the server), with an optional reason.
 */
import type { ApiKey } from '../../api/index.ts';
import { MAX_REPORT_REASON } from '../../api/compromise.ts';
import { html, type Html } from '../html.ts';
import { keyHref } from './deployment.ts';
import { deploymentHref } from './deployments.ts';
import { errorNotice } from './layout.ts';

export function revokeKeyPage(k: ApiKey, csrf: string, error?: string): Html {
  const ns = k.metadata.namespace!;
  const dep = k.spec.deploymentRef.name;
  const name = k.metadata.name!;
  return html`<p><a href="/">Deployments</a> › <a href="${deploymentHref(ns, dep)}">${dep}</a></p>
<h1>Revoke API Key ${name}?</h1>
<p>Do this when its secret leaked. The key issues no more tokens, and every token it issued stops working at once.
The key and its Secret stay: <strong>Rotate</strong> it afterwards to give it a new secret and use it again.</p>
${errorNotice(error)}
<form class="card" method="post" action="${keyHref(ns, dep, name)}/revoke">
<input type="hidden" name="csrf" value="${csrf}">
<label for="reason">Reason (optional)</label>
<input type="text" id="reason" name="reason" maxlength="${String(MAX_REPORT_REASON)}" autocomplete="off">
<label for="confirm">Type the key's name, <code>${name}</code>, to confirm</label>
<input type="text" id="confirm" name="confirm" data-confirm="${name}" autocomplete="off" spellcheck="false"${error ? html` aria-invalid="true"` : ''}>
<div class="actions"><button type="submit" class="danger">Revoke API Key</button> <a class="button" href="${deploymentHref(ns, dep)}">Cancel</a></div>
</form>`;
}
