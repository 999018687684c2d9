/** Ready, as a badge with its reason when it is not True. */
import type { ApiKey, Deployment } from '../../api/index.ts';
import { getCondition } from '../../api/conditions.ts';
import { html, type Html } from '../html.ts';

export function readyBadge(obj: ApiKey | Deployment): Html {
  const r = getCondition(obj.status?.conditions, 'Ready');
  if (!r) return html`<span class="badge unknown">Pending</span>`;
  if (r.status === 'True') return html`<span class="badge ok">Ready</span>`;
  return html`<span class="badge bad">Not ready</span> <span class="muted">${r.reason}${r.message ? `: ${r.message}` : ''}</span>`;
}
