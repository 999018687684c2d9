/**
 * spec.allowedNetworks at the token endpoint: whether the request's client
 * address (the TCP peer, or through --trusted-proxies the hop of
 * X-Forwarded-For proxies.ts picks) is in what both the key or
 * FederatedCredential and its Deployment allow (shared/networks.ts).
 *
 * The callers make a refusal indistinguishable from a wrong credential:
 * client-auth.ts answers it as a wrong secret, federated-exchange.ts as an
 * external token no credential trusts, each counted against the address by
 * the same failure limiter. Only the operator learns more: the failures
 * metric's reason, apikey_operator_token_network_refusals_total (labelled by
 * kind and by which list refused, nothing per key or per namespace: the
 * series are fixed, whatever the number of keys), the audit record's detail,
 * and one log line, since only a client that proved the credential gets here.
 *
 * Enforced where a credential is presented (client credentials, federated
 * exchange), not at /authz or introspection: an access token is a bearer
 * token that its holder may use from elsewhere by design (docs/security/model.md).
 */
import { checkNetworks, parseAddress, type NetworkList, type NetworkVerdict } from '../shared/networks.ts';
import type { RequestInfo, ServerContext } from './context.ts';

export type NetworkCredentialKind = 'apikey' | 'federated';

const WHOSE = { apikey: "the ApiKey's", federated: "the FederatedCredential's" } as const;

const ANYWHERE: NetworkVerdict = { allowed: true, credentialRule: undefined, deploymentRule: undefined };

/** What the two lists say of the request's client address; with neither list, no parsing at all. */
export function networkVerdict(req: RequestInfo, own: NetworkList | undefined, deployment: NetworkList | undefined): NetworkVerdict {
  return !own && !deployment ? ANYWHERE : checkNetworks(parseAddress(req.clientIp), own, deployment);
}

/** True when the client may use the credential from where it is; a refusal is counted, logged and noted for the audit. */
export function fromAllowedNetwork(ctx: ServerContext, req: RequestInfo, kind: NetworkCredentialKind, who: string,
  own: NetworkList | undefined, deployment: NetworkList | undefined): boolean {
  return recordNetworkVerdict(ctx, req, kind, who, networkVerdict(req, own, deployment));
}

/** Notes an allowed verdict's rules for the audit, or counts, logs and notes a refusal; true when allowed. */
export function recordNetworkVerdict(ctx: ServerContext, req: RequestInfo, kind: NetworkCredentialKind, who: string,
  verdict: NetworkVerdict): boolean {
  if (verdict.allowed) {
    if (verdict.credentialRule !== undefined || verdict.deploymentRule !== undefined) {
      req.audit.allowedBy = {
        ...verdict.credentialRule !== undefined ? { credential: verdict.credentialRule } : {},
        ...verdict.deploymentRule !== undefined ? { deployment: verdict.deploymentRule } : {},
      };
    }
    return true;
  }
  const whose = verdict.refusedBy === 'credential' ? WHOSE[kind] : "the Deployment's";
  req.audit.detail = `the client address is outside ${whose} allowedNetworks`;
  ctx.metrics.networkRefused(kind, verdict.refusedBy);
  ctx.log.warn({ [kind === 'apikey' ? 'keyId' : 'federatedCredential']: who, clientAddress: req.clientIp, refusedBy: verdict.refusedBy },
    'a valid credential was presented from outside its allowed networks; refused as a wrong one');
  return false;
}
