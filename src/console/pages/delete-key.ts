/** Delete API Key: the person confirms by typing the key's name (checked again on the server). */
import type { ApiKey } from '../../api/index.ts';
import { reportedSecretNameOf } from '../../api/index.ts';
import { html, type Html } from '../html.ts';
import { keyHref } from './deployment.ts';
import { deploymentHref } from './deployments.ts';
import { errorNotice } from './layout.ts';

export function deleteKeyPage(k: ApiKey, csrf: string, error?: string): Html {
  const ns = k.metadata.namespace!;
  const dep = k.spec.deploymentRef.name;
  const name = k.metadata.name!;
  return html`<p><a href="/">Deployments</a> › <a href="${deploymentHref(ns, dep)}">${dep}</a></p>
<h1>Delete API Key ${name}?</h1>
<p>Its tokens stop working, and its Secret <code>${reportedSecretNameOf(k)}</code> is deleted with it: every job that uses it stops working. This cannot be undone.</p>
${errorNotice(error)}
<form class="card" method="post" action="${keyHref(ns, dep, name)}/delete">
<input type="hidden" name="csrf" value="${csrf}">
<label for="confirm">Type the key's name, <code>${name}</code>, to confirm</label>
<input type="text" id="confirm" name="confirm" data-confirm="${name}" autocomplete="off" spellcheck="false"${error ? html` aria-invalid="true"` : ''}>
<div class="actions"><button type="submit" class="danger">Delete API Key</button> <a class="button" href="${deploymentHref(ns, dep)}">Cancel</a></div>
</form>`;
}
