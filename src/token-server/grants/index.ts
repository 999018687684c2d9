/** The grant types the token endpoint serves, by `grant_type`. */
import { clientCredentials } from './client-credentials.ts';
import type { Grant } from './types.ts';

export type { Grant, TokenResult } from './types.ts';

export function grantRegistry(grants: readonly Grant[] = [clientCredentials]): ReadonlyMap<string, Grant> {
  return new Map(grants.map((g) => [g.type, g]));
}
