/**
 * Condition reasons and event reasons: named constants, as users grep for them.
 *
 * A reason the Ready condition can carry goes in `ReadyReason` and has a class
 * in conditions.ts (`REASON_CLASS`: ready, progressing or stalled), which is
 * what sets the kstatus conditions Reconciling and Stalled beside Ready; the
 * compiler refuses a Ready condition with a reason that has no class. A reason
 * of another condition (a warning that leaves the object usable, `ExpiringReason`)
 * has no class: it never makes Reconciling or Stalled True. A reason that only
 * ever names an event goes in `EventReason`. src/controller/conditions.test.ts
 * fails on a reason that is in none of them.
 */

/** The reasons of the Ready condition, of every kind. */
export const ReadyReason = {
  Ready: 'SecretReady',
  Issuing: 'Issuing',
  Restoring: 'Restoring',
  DeploymentNotFound: 'DeploymentNotFound',
  SecretConflict: 'SecretConflict',
  KeyIdConflict: 'KeyIdConflict',
  AudienceConflict: 'AudienceConflict',
  Expired: 'Expired',
  Compromised: 'Compromised',
  DeploymentReady: 'Ready',
  NoAudiences: 'NoAudiences',
  InvalidSpec: 'InvalidSpec',
  IssuerNotAllowed: 'IssuerNotAllowed',
  InvalidExpression: 'InvalidExpression',
  FederationReady: 'Ready',
} as const;

/**
 * The reasons of the Expiring condition of an ApiKey with spec.expiresAt (expiry.ts): a warning that
 * leaves the key usable, so it has no kstatus class (Reconciling and Stalled follow Ready alone).
 * ExpiresSoon also names the Warning event at each threshold; Expired is Ready's own reason.
 */
export const ExpiringReason = {
  ExpiresSoon: 'ExpiresSoon',
  ExpiryNotNear: 'ExpiryNotNear',
} as const;

/** Reasons that only events carry, never a condition. */
export const EventReason = {
  Created: 'Created',
  Rotated: 'Rotated',
  SecretRecreated: 'SecretRecreated',
  SecretModified: 'SecretModified',
  Restored: 'Restored',
  NotRestored: 'NotRestored',
  SigningKeysRotated: 'SigningKeysRotated',
  SigningKeysInvalid: 'SigningKeysInvalid',
} as const;

export const Reason = { ...ReadyReason, ...ExpiringReason, ...EventReason } as const;

export type ReadyReasonValue = (typeof ReadyReason)[keyof typeof ReadyReason];
