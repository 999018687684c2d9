/** The grant types the token endpoint serves, by `grant_type`. */
import { clientCredentials } from './client-credentials.ts';
import { tokenExchange } from './token-exchange.ts';
import type { Grant } from './types.ts';

export type { Grant, TokenResult } from './types.ts';

/**
 * Client credentials always; RFC 8693 token exchange when the server can ask
 * the Kubernetes API who a token belongs to (not with a MemoryKeyStore alone),
 * or trusts external issuers (federation).
 */
export function grantRegistry(opts: { tokenExchange: boolean }): ReadonlyMap<string, Grant> {
  const grants = opts.tokenExchange ? [clientCredentials, tokenExchange] : [clientCredentials];
  return new Map(grants.map((g) => [g.type, g]));
}
