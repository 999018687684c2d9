/**
 * A grant type of the token endpoint: one module per `grant_type` (RFC 6749
 * 4.4 client credentials, RFC 8693 token exchange), each
 * turning parameters into a token response or throwing an OAuthError.
 */
import type { RequestInfo, ServerContext } from '../context.ts';
import type { Params } from '../params.ts';
import type { AccessTokenClaims } from '../access-token.ts';

export interface TokenResult {
  /** The JSON body of the 200 response. */
  body: string;
  /** The claims of the token in `body`, for the audit record. */
  claims: AccessTokenClaims;
}

export interface Grant {
  /** The `grant_type` value, also listed in discovery's grant_types_supported. */
  readonly type: string;
  /** Parameters that may be given more than once (RFC 8707 `resource`); any other repeated one is invalid_request. */
  readonly repeatable: readonly string[];
  /** Synchronous when it can be (client credentials), so the hot path has no extra await. */
  handle(ctx: ServerContext, req: RequestInfo, params: Params): TokenResult | Promise<TokenResult>;
}
