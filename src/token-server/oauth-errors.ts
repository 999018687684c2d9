/**
 * OAuth 2.0 errors as values that know their HTTP status (RFC 6749 section
 * 5.2, RFC 8707 invalid_target, RFC 8628 slow_down for throttling). Their
 * descriptions are written for the client and never hold a secret, a token or
 * anything read from the request beyond a parameter name; anything that is
 * not an OAuthError becomes a bare `server_error`.
 *
 * @example
 *   throw new InvalidScope('scope "admin" is beyond this key\'s permissions');
 */

/** Bounded reasons for the failures metric (never a key id, a secret or free text). */
export type FailureReason =
  | 'malformed_request' | 'body_too_large' | 'unsupported_media_type' | 'duplicate_parameter'
  | 'missing_parameter' | 'unsupported_grant_type' | 'no_credentials' | 'two_auth_methods'
  | 'malformed_client_id' | 'malformed_secret' | 'unknown_key' | 'wrong_secret' | 'rate_limited'
  | 'key_expired' | 'key_deleting' | 'key_not_ready' | 'deployment_gone' | 'owner_mismatch'
  | 'invalid_scope' | 'invalid_target' | 'not_ready' | 'invalid_grant' | 'access_denied'
  | 'client_auth_not_allowed' | 'unsupported_parameter' | 'unsupported_token_type'
  | 'kube_unavailable' | 'federated_token_refused' | 'signer_unavailable' | 'cache_stale';

export class OAuthError extends Error {
  readonly error: string;
  readonly status: number;
  readonly reason: FailureReason;
  /** Extra response headers (WWW-Authenticate, Retry-After, Allow). */
  readonly headers: Record<string, string> | undefined;

  constructor(error: string, status: number, description: string, reason: FailureReason, headers?: Record<string, string>) {
    super(description);
    this.name = 'OAuthError';
    this.error = error;
    this.status = status;
    this.reason = reason;
    this.headers = headers;
  }

  /** The RFC 6749 5.2 JSON body. */
  body(): string {
    return JSON.stringify({ error: this.error, error_description: this.message });
  }
}

export class InvalidRequest extends OAuthError {
  constructor(description: string, reason: FailureReason = 'malformed_request', status = 400) {
    super('invalid_request', status, description, reason);
  }
}

/**
 * 405 with Allow: the endpoint exists but not for this method. RFC 6749 has
 * no code of its own for it; it is a malformed request.
 */
export class MethodNotAllowed extends OAuthError {
  constructor(description: string, allowed: readonly string[]) {
    super('invalid_request', 405, description, 'malformed_request', { allow: allowed.join(', ') });
  }
}

export interface InvalidClientOptions {
  /**
   * The client tried to authenticate with the Authorization header (HTTP
   * Basic, or a scheme this server does not take), so the answer carries
   * `WWW-Authenticate: Basic` (RFC 6749 5.2).
   */
  viaAuthorizationHeader?: boolean;
}

/** 401: the client did not authenticate. */
export class InvalidClient extends OAuthError {
  constructor(description: string, reason: FailureReason, opts: InvalidClientOptions = {}) {
    super('invalid_client', 401, description, reason,
      opts.viaAuthorizationHeader ? { 'www-authenticate': 'Basic realm="apikey-operator", charset="UTF-8"' } : undefined);
  }
}

export class InvalidGrant extends OAuthError {
  constructor(description: string, reason: FailureReason = 'invalid_grant') {
    super('invalid_grant', 400, description, reason);
  }
}

/**
 * 403: the subject authenticated (token exchange) but RBAC does not let it
 * get tokens for the Deployment it named. RFC 6749 defines access_denied for
 * the authorization endpoint; at the token endpoint the status says what
 * happened (authenticated, not authorized). The same answer is given for a
 * Deployment that does not exist, so it reveals nothing.
 */
export class AccessDenied extends OAuthError {
  constructor(description: string) {
    super('access_denied', 403, description, 'access_denied');
  }
}

/** The client authenticated but may not obtain tokens now (its key is not Ready, its Deployment is gone). */
export class UnauthorizedClient extends OAuthError {
  constructor(description: string, reason: FailureReason) {
    super('unauthorized_client', 400, description, reason);
  }
}

export class UnsupportedGrantType extends OAuthError {
  constructor(description: string) {
    super('unsupported_grant_type', 400, description, 'unsupported_grant_type');
  }
}

export class InvalidScope extends OAuthError {
  constructor(description: string) {
    super('invalid_scope', 400, description, 'invalid_scope');
  }
}

/** RFC 8707: the audience or resource asked for is not one this key may use. */
export class InvalidTarget extends OAuthError {
  constructor(description: string) {
    super('invalid_target', 400, description, 'invalid_target');
  }
}

/** 429 with Retry-After: too many failed attempts for this key id (or token exchanges) from this address. */
export class SlowDown extends OAuthError {
  readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number, why = 'too many failed attempts') {
    super('slow_down', 429, `${why}; retry after ${retryAfterSeconds} seconds`, 'rate_limited',
      { 'retry-after': String(retryAfterSeconds) });
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** 503: no signing key yet (caches not synced), or the Kubernetes API did not answer a review; a client should retry. */
export class TemporarilyUnavailable extends OAuthError {
  constructor(description: string, reason: FailureReason = 'not_ready', retryAfterSeconds = 1) {
    super('temporarily_unavailable', 503, description, reason, { 'retry-after': String(retryAfterSeconds) });
  }
}

/** The body of every unexpected failure: no detail, ever. */
export const SERVER_ERROR_BODY = '{"error":"server_error"}';
