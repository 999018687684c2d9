/** Ready, as a badge with its reason when it is not True; a key's expiry, marked when it is near or past. */
import { EXPIRING_CONDITION, type ApiKey, type Deployment } from '../../api/index.ts';
import { getCondition } from '../../api/conditions.ts';
import { html, type Html } from '../html.ts';
import { when } from './layout.ts';

export function readyBadge(obj: ApiKey | Deployment): Html {
  const r = getCondition(obj.status?.conditions, 'Ready');
  if (!r) return html`<span class="badge unknown">Pending</span>`;
  if (r.status === 'True') return html`<span class="badge ok">Ready</span>`;
  return html`<span class="badge bad">Not ready</span> <span class="muted">${r.reason}${r.message ? `: ${r.message}` : ''}</span>`;
}

/**
 * When a key expires: "never", the time, and a badge once the controller
 * says it is Expiring (within a warning threshold) or it has expired.
 */
export function expiryBadge(k: ApiKey, nowMs = Date.now()): Html {
  const at = k.spec.expiresAt;
  if (!at) return when(undefined, 'never');
  if (Date.parse(at) <= nowMs) return html`<span class="badge bad">Expired</span> ${when(at)}`;
  const expiring = getCondition(k.status?.conditions, EXPIRING_CONDITION);
  if (expiring?.status === 'True') return html`<span class="badge warn" title="${expiring.message}">Expires soon</span> ${when(at)}`;
  return when(at);
}
