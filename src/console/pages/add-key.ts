/** The Add API Key form; each error is shown next to its field and tied to it for screen readers. */
import { PERMISSIONS } from '../../api/index.ts';
import { attr, html, type Html } from '../html.ts';
import type { FieldErrors, KeyField, KeyFormValues } from '../key-form.ts';
import { deploymentHref } from './deployments.ts';
import { errorNotice } from './layout.ts';

export interface AddKeyView {
  namespace: string;
  deployment: string;
  values: KeyFormValues;
  errors: FieldErrors;
  csrf: string;
}

function described(field: KeyField, errors: FieldErrors, hint?: string): Html {
  const ids = [hint ? `${field}-hint` : '', errors[field] ? `${field}-error` : ''].filter(Boolean).join(' ');
  return html`${ids ? html` aria-describedby="${ids}"` : ''}${errors[field] ? html` aria-invalid="true"` : ''}`;
}

function fieldError(field: KeyField, errors: FieldErrors): Html {
  return errors[field] ? html`<p class="field-error" id="${field}-error">${errors[field]}</p>` : html``;
}

function textField(field: KeyField, label: string, v: KeyFormValues, errors: FieldErrors, hint?: string, required = false): Html {
  return html`<label for="${field}">${label}</label>
<input type="text" id="${field}" name="${field}" value="${v[field]}"${attr('required', required)}${described(field, errors, hint)} autocomplete="off" spellcheck="false">
${hint ? html`<p class="hint" id="${field}-hint">${hint}</p>` : ''}
${fieldError(field, errors)}`;
}

/** The allowed networks: a textarea of CIDRs, shared by this form and the key's Allowed networks page. */
export function networksField(value: string, errors: FieldErrors): Html {
  return html`<label for="allowedNetworks">Allowed networks (optional)</label>
<textarea id="allowedNetworks" name="allowedNetworks" rows="3" spellcheck="false"${described('allowedNetworks', errors, 'allowedNetworks')}>${value}</textarea>
<p class="hint" id="allowedNetworks-hint">CIDRs the secret is accepted from, one a line, such as 10.20.0.0/16 or 2001:db8::/48; a single address is a /32 or a /128. The key may be used from what both this list and its Deployment's allow. Empty: anywhere.</p>
${fieldError('allowedNetworks', errors)}`;
}

export function addKeyPage(v: AddKeyView): Html {
  const { values, errors } = v;
  const base = deploymentHref(v.namespace, v.deployment);
  return html`<p><a href="/">Deployments</a> › <a href="${base}">${v.deployment}</a></p>
<h1>Add API Key</h1>
<p class="muted">For Deployment ${v.deployment} in namespace ${v.namespace}. The key id and secret are shown once, right after it is created.</p>
${errorNotice(errors.form)}
<form class="card" method="post" action="${base}/keys" novalidate>
<input type="hidden" name="csrf" value="${v.csrf}">
${textField('name', 'Name', values, errors, 'Lowercase letters, digits and "-", e.g. ci-deployer. Also the name of the Secret that holds the credentials.', true)}
<label for="description">Description</label>
<textarea id="description" name="description" maxlength="1024"${described('description', errors, 'description')}>${values.description}</textarea>
<p class="hint" id="description-hint">What uses this key, for the people who see it later.</p>
${fieldError('description', errors)}
<fieldset${errors.permissions ? html` aria-describedby="permissions-error"` : ''}>
<legend>Permissions</legend>
${PERMISSIONS.map((p) => html`<label><input type="checkbox" name="permissions" value="${p}"${attr('checked', values.permissions.includes(p))}> ${p}</label>`)}
${fieldError('permissions', errors)}
</fieldset>
${textField('expiresAt', 'Expires at (optional)', values, errors, 'A date (2030-01-31, midnight UTC) or an RFC 3339 time. Empty: never.')}
${textField('rotateEvery', 'Rotate every (optional)', values, errors, 'A duration such as 2160h (90 days). Empty: only when you rotate it.')}
${textField('gracePeriod', 'Grace period after a rotation (optional)', values, errors, 'How long the previous secret keeps working, such as 1h (the default) or 0s.')}
${networksField(values.allowedNetworks, errors)}
<div class="actions"><button type="submit" class="primary">Create API Key</button> <a class="button" href="${base}">Cancel</a></div>
</form>`;
}
