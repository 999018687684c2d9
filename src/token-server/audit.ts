/**
 * The audit log of the token endpoint: one JSON record for every token
 * issued and every token request refused, by every grant, on a stream of its
 * own (audit-writer.ts) so that a log shipper can route it apart from the
 * application log.
 *
 * A record (`apiVersion: audit.apikeys.dev/v1`, `kind: TokenRequest`) says
 * when, the outcome (`issued` or `refused`) with the HTTP status, the OAuth
 * error and the bounded refusal reason (oauth-errors.ts FailureReason), the
 * grant type, who (the key id, or the subject of a token exchange, with the
 * FederatedCredential and external issuer of a federated one), the
 * Deployment, the audiences, the scope, the token's `jti` and expiry, the
 * client address (through --trusted-proxies, not aggregated) and the User-Agent.
 *
 * Invariants:
 * - Never a secret or a token: issued records are built from the token's
 *   claims minus `cred_fp`; refused records carry only what the grants noted
 *   as established (AuditNotes: a key id only once it has the key id format,
 *   a subject only once Kubernetes or the issuer vouched for it) and nothing
 *   else the client sent, apart from the User-Agent. As a second line, every
 *   record passes through redactSecrets.
 * - Bounded: each free string is cut (User-Agent USER_AGENT_MAX, others
 *   FIELD_MAX characters) and every character outside printable ASCII is
 *   escaped, so a record is one line of plain ASCII of a few KiB at most.
 * - Records of refusals before the body was read (size, content type,
 *   method) are written too: a refused token request is any answer of the
 *   token path but 200.
 */
import type { AccessTokenClaims } from './access-token.ts';
import type { AuditWriter } from './audit-writer.ts';
import { OAuthError } from './oauth-errors.ts';
import { redactSecrets } from '../shared/redact.ts';

export const AUDIT_API_VERSION = 'audit.apikeys.dev/v1';
export const USER_AGENT_MAX = 256;
const FIELD_MAX = 512;
const ADDRESS_MAX = 64;

/** What the grants established about a request, as they went (never a credential). */
export interface AuditNotes {
  grantType?: string;
  keyId?: string;
  subject?: string;
  deployment?: string;
  federatedCredential?: string;
  federatedIssuer?: string;
  /** A fixed, operator-facing detail of a refusal (e.g. why a federated token did not match). */
  detail?: string;
  /** The spec.allowedNetworks rules that let the client address in (network-check.ts), when there are lists. */
  allowedBy?: { credential?: string; deployment?: string };
}

/** The party behind a request, for the audit record. */
export interface AuditParty {
  /** The client's address through the trusted proxies, not aggregated. */
  clientAddress: string;
  userAgent: string | undefined;
}

export interface TokenAuditRecord {
  apiVersion: typeof AUDIT_API_VERSION;
  kind: 'TokenRequest';
  time: string;
  outcome: 'issued' | 'refused';
  status: number;
  error?: string;
  reason?: string;
  detail?: string;
  grantType?: string;
  keyId?: string;
  subject?: string;
  clientId?: string;
  deployment?: string;
  federatedCredential?: string;
  federatedIssuer?: string;
  /** The allowedNetworks rules the client address matched: the key's or credential's, and the Deployment's. */
  allowedBy?: { credential?: string; deployment?: string };
  audience?: string[];
  scope?: string;
  jti?: string;
  expiresAt?: string;
  clientAddress: string;
  userAgent?: string;
}

function cut(s: string | undefined, max = FIELD_MAX): string | undefined {
  return s === undefined ? undefined : s.length > max ? `${s.slice(0, max)}...` : s;
}

/** JSON with every character outside printable ASCII escaped: one line, nothing a terminal or a parser can trip on. */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export class TokenAudit {
  private readonly writer: AuditWriter;

  constructor(writer: AuditWriter) {
    this.writer = writer;
  }

  issued(party: AuditParty, notes: AuditNotes, claims: AccessTokenClaims, nowMs: number): void {
    this.emit({
      ...this.base(party, notes, 'issued', 200, nowMs),
      keyId: notes.keyId,
      subject: cut(claims.sub),
      clientId: cut(claims.client_id),
      deployment: claims.deployment,
      federatedCredential: notes.federatedCredential,
      federatedIssuer: cut(claims.federated_issuer),
      allowedBy: notes.allowedBy,
      audience: (Array.isArray(claims.aud) ? claims.aud : [claims.aud]).map((a) => cut(a)!),
      scope: claims.scope,
      jti: claims.jti,
      expiresAt: new Date(claims.exp * 1000).toISOString(),
    });
  }

  refused(party: AuditParty, notes: AuditNotes, err: unknown, nowMs: number): void {
    const oauth = err instanceof OAuthError ? err : undefined;
    this.emit({
      ...this.base(party, notes, 'refused', oauth?.status ?? 500, nowMs),
      error: oauth?.error ?? 'server_error',
      reason: oauth?.reason ?? 'server_error',
      detail: notes.detail,
      keyId: notes.keyId,
      subject: cut(notes.subject),
      deployment: cut(notes.deployment),
      federatedCredential: notes.federatedCredential,
      federatedIssuer: cut(notes.federatedIssuer),
    });
  }

  flush(): Promise<void> {
    return this.writer.flush();
  }

  close(): Promise<void> {
    return this.writer.close();
  }

  private base(party: AuditParty, notes: AuditNotes, outcome: 'issued' | 'refused', status: number, nowMs: number): TokenAuditRecord {
    return {
      apiVersion: AUDIT_API_VERSION,
      kind: 'TokenRequest',
      time: new Date(nowMs).toISOString(),
      outcome,
      status,
      grantType: notes.grantType,
      clientAddress: cut(party.clientAddress, ADDRESS_MAX)!,
      userAgent: cut(party.userAgent, USER_AGENT_MAX),
    };
  }

  private emit(record: TokenAuditRecord): void {
    // Field order is the record's; undefined fields are left out by JSON.stringify.
    this.writer.write(redactSecrets(asciiJson(record)));
  }
}
