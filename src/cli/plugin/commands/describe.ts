/**
 * `kubectl apikey describe NAME`: everything a person asks about a key
 * (what it grants, when it rotated, until when the previous secret works,
 * when it expires, when it was last used, why it is not Ready) and its
 * recent events. Never the secret.
 */
import { describeReport } from '../../../api/compromise.ts';
import type { ApiKey } from '../../../api/index.ts';
import { DEFAULT_GRACE_PERIOD, DEFAULT_TOKEN_TTL, reportedSecretNameOf, SECRET_KEYS } from '../../../api/index.ts';
import type { CommandDef, Invocation } from '../command.ts';
import { PluginError } from '../../../client/errors.ts';
import { age, formatStructured, formatTable, timeAndDistance, withoutManagedFields } from '../output.ts';
import type { Session } from '../session.ts';
import { data, escapeTerminal, text } from '../terminal.ts';

interface EventObject {
  type?: string;
  reason?: string;
  note?: string;
  eventTime?: string;
  deprecatedLastTimestamp?: string;
  deprecatedCount?: number;
  series?: { count?: number; lastObservedTime?: string };
  reportingController?: string;
  regarding?: { kind?: string; name?: string };
  metadata: { creationTimestamp?: string };
}

export interface KeyEvent { type: string; reason: string; message: string; count: number; lastSeen: string; from: string }

const MAX_EVENTS = 20;

/** The key's recent events (events.k8s.io/v1), oldest first; `undefined` (with why) when they cannot be read. */
async function eventsOf(s: Session, name: string): Promise<{ events?: KeyEvent[]; unavailable?: string }> {
  try {
    const list = await s.call({ verb: 'list', resource: 'events.events.k8s.io', namespace: s.namespace },
      (c) => c.list<EventObject>(s.eventsPath(), {
        fieldSelector: `regarding.name=${name}`,
      }));
    const events = list.items
      .filter((e) => e.regarding?.kind === undefined || e.regarding.kind === 'ApiKey')
      .map((e): KeyEvent => ({
        type: e.type ?? '',
        reason: e.reason ?? '',
        message: e.note ?? '',
        count: e.series?.count ?? e.deprecatedCount ?? 1,
        lastSeen: e.series?.lastObservedTime ?? e.eventTime ?? e.deprecatedLastTimestamp ?? e.metadata.creationTimestamp ?? '',
        from: e.reportingController ?? '',
      }))
      .sort((a, b) => Date.parse(a.lastSeen) - Date.parse(b.lastSeen));
    return { events: events.slice(-MAX_EVENTS) };
  } catch (err) {
    return { unavailable: (err as PluginError).message };
  }
}

function rotationText(ak: ApiKey): string {
  const grace = ak.spec.rotation?.gracePeriod ?? DEFAULT_GRACE_PERIOD;
  const every = ak.spec.rotation?.every;
  return every
    ? `every ${every}, previous secret valid for ${grace} after each rotation`
    : `on request only (kubectl apikey rotate ${ak.metadata.name}), previous secret valid for ${grace} after each rotation`;
}

/** The last leak report the operator recorded: whether it is the current secret's (revoked) or an old one's. */
function compromiseText(st: NonNullable<ApiKey['status']>): string {
  const c = st.compromise;
  if (!c) return 'never reported';
  const which = c.secretHash === st.secretHash ? 'REVOKED: the current secret was' : 'an earlier secret (rotated away since) was';
  return `${which} ${describeReport(c)}`;
}

function describeText(ak: ApiKey, ev: { events?: KeyEvent[]; unavailable?: string }): string {
  const now = Date.now();
  const st = ak.status ?? {};
  const field = (k: string, v: string) => `${`${k}:`.padEnd(30)}${escapeTerminal(v)}`;
  const lines = [
    field('Name', ak.metadata.name ?? ''),
    field('Namespace', ak.metadata.namespace ?? ''),
    field('Deployment', ak.spec.deploymentRef.name),
    field('Description', ak.spec.description ?? '<none>'),
    field('Key ID', st.keyId ?? '<pending>'),
    field('Permissions', (ak.spec.permissions ?? ['deploy']).join(', ')),
    field('Allowed networks', ak.spec.allowedNetworks?.length ? ak.spec.allowedNetworks.join(', ') : 'anywhere its Deployment allows'),
    field('Secret', `${reportedSecretNameOf(ak)} (keys ${Object.values(SECRET_KEYS).join(', ')})`),
    field('Token TTL', ak.spec.tokenTTL ?? DEFAULT_TOKEN_TTL),
    field('Rotation', rotationText(ak)),
    field('Last rotation', timeAndDistance(st.lastRotationTime, now, 'never')),
    field('Previous secret valid until', timeAndDistance(st.previousSecretValidUntil, now, '<none>')),
    field('Expires', timeAndDistance(ak.spec.expiresAt ?? st.expiresAt, now, 'never')),
    field('Last used', timeAndDistance(st.lastUsedAt, now, 'never')),
    field('Compromised', compromiseText(st)),
    field('Created', timeAndDistance(ak.metadata.creationTimestamp as unknown as string, now)),
    'Conditions:',
  ];
  const conds = st.conditions ?? [];
  lines.push(conds.length === 0
    ? '  <none>'
    : formatTable(['TYPE', 'STATUS', 'REASON', 'SINCE', 'MESSAGE'], conds.map((c) => [
      c.type, c.status, c.reason, age(c.lastTransitionTime, now), c.message,
    ])).trimEnd().split('\n').map((l) => `  ${l}`).join('\n'));
  lines.push('Events:');
  if (ev.unavailable) lines.push(`  <cannot be shown: ${escapeTerminal(ev.unavailable)}>`);
  else if (!ev.events?.length) lines.push('  <none>');
  else {
    lines.push(formatTable(['TYPE', 'REASON', 'AGE', 'FROM', 'MESSAGE'], ev.events.map((e) => [
      e.type, e.reason, `${age(e.lastSeen, now)}${e.count > 1 ? ` (x${e.count})` : ''}`, e.from, e.message,
    ])).trimEnd().split('\n').map((l) => `  ${l}`).join('\n'));
  }
  return `${lines.join('\n')}\n`;
}

async function describe(inv: Invocation): Promise<number> {
  const s = await inv.session();
  const name = inv.positionals[0]!;
  const ak = await s.getApiKey(name);
  const ev = await eventsOf(s, name);
  if (inv.output === 'table') text(describeText(ak, ev));
  else data(formatStructured({ apiKey: withoutManagedFields(ak), events: ev.events ?? [] }, inv.output));
  return 0;
}

export const describeCommand: CommandDef = {
  name: 'describe',
  summary: 'show an API key in detail, with its recent events',
  description: [
    'Show an API key: its Deployment, key id, permissions, Secret, token lifetime, rotation, expiry,',
    'last use, conditions and recent events. The secret is never shown.',
    'With -o json|yaml: {apiKey: the ApiKey object, events: [{type, reason, message, count, lastSeen, from}]}.',
  ].join('\n'),
  usage: 'describe NAME [flags]',
  positionals: { min: 1, max: 1, names: ['NAME'] },
  output: ['json', 'yaml', 'jsonpath'],
  flags: [],
  examples: [
    'kubectl apikey describe ci-deployer',
    'kubectl apikey describe ci-deployer -n team-a -o yaml',
  ],
  run: describe,
};
