/**
 * `kubectl apikey set-networks NAME CIDR...`: replaces an API key's
 * spec.allowedNetworks (a merge patch of that one field, so nothing else of
 * the spec is touched); `--anywhere` removes the list. Each CIDR is checked
 * here first (shared/networks.ts), so a typo gets the canonical form to write
 * instead; the apiserver checks them again. The token server follows the
 * change from its next watch event; tokens already issued keep working until
 * they expire (the list is checked where the secret is presented).
 */
import type { ApiKey } from '../../../api/index.ts';
import { checkAllowedNetworks } from '../../../shared/networks.ts';
import type { CommandDef, Invocation } from '../command.ts';
import { PluginUsageError } from '../../../client/errors.ts';
import { formatStructured } from '../output.ts';
import { APIKEY_RESOURCE } from '../resources.ts';
import { data, escapeTerminal, text } from '../terminal.ts';

/** The CIDRs of a comma-separated flag value or of positionals, checked; throws a usage error naming `what`. */
export function allowedNetworksOf(entries: readonly string[], what: string): string[] {
  const list = entries.flatMap((e) => e.split(',')).map((e) => e.trim()).filter((e) => e !== '');
  try {
    return checkAllowedNetworks(list);
  } catch (err) {
    throw new PluginUsageError(`${what}: ${(err as Error).message}`);
  }
}

async function setNetworks(inv: Invocation): Promise<number> {
  const [name, ...cidrs] = inv.positionals as [string, ...string[]];
  const anywhere = inv.values.anywhere === true;
  if (anywhere && cidrs.length > 0) throw new PluginUsageError('give CIDRs or --anywhere, not both');
  if (!anywhere && cidrs.length === 0) {
    throw new PluginUsageError('set-networks needs the CIDRs the key may be used from (such as 10.20.0.0/16 2001:db8::/48), or --anywhere');
  }
  const list = anywhere ? [] : allowedNetworksOf(cidrs, 'set-networks');
  const s = await inv.session();
  const ak = await s.call({ verb: 'patch', resource: APIKEY_RESOURCE, namespace: s.namespace, name },
    // A merge patch's null removes the field; a list replaces the whole list.
    (c) => c.mergePatch<ApiKey>(s.apiKeyPath(name), { spec: { allowedNetworks: anywhere ? null : list } }));
  const now = ak.spec.allowedNetworks ?? [];
  if (inv.output !== 'table') {
    data(formatStructured({ name, namespace: s.namespace, allowedNetworks: now }, inv.output));
    return 0;
  }
  text(now.length === 0
    ? `ApiKey "${escapeTerminal(name)}" may now be used from anywhere.\n`
    : `ApiKey "${escapeTerminal(name)}" may now be used only from ${escapeTerminal(now.join(', '))}` +
      ' (and what its Deployment allows). Tokens it already issued keep working until they expire.\n');
  return 0;
}

export const setNetworksCommand: CommandDef = {
  name: 'set-networks',
  summary: 'set the client networks an API key may be used from',
  description: [
    "Replace an API key's spec.allowedNetworks: the client networks (CIDRs, IPv4 or IPv6) its secret is",
    'accepted from. A request from elsewhere is refused as if the secret were wrong. The key may be used',
    "from what both it and its Deployment allow. --anywhere removes the list. For a Deployment's or a",
    "FederatedCredential's list: kubectl patch (see docs/concepts/apikeys.md).",
  ].join('\n'),
  usage: 'set-networks NAME (CIDR... | --anywhere) [flags]',
  positionals: { min: 1, max: 1 + 64, names: ['NAME', 'CIDR'] },
  output: ['json', 'yaml', 'jsonpath'],
  flags: [
    { name: 'anywhere', type: 'boolean', help: 'remove the list: the key may be used from any address' },
  ],
  examples: [
    '# Only from the CI runners\' network and one NAT address',
    'kubectl apikey set-networks ci-deployer 10.20.0.0/16 203.0.113.7/32',
    '',
    '# Lift the restriction',
    'kubectl apikey set-networks ci-deployer --anywhere',
  ],
  run: setNetworks,
};
