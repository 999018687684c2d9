/** Condition reasons and event reasons: named constants, as users grep for them. */
export const Reason = {
  Ready: 'SecretReady',
  Issuing: 'Issuing',
  DeploymentNotFound: 'DeploymentNotFound',
  SecretConflict: 'SecretConflict',
  KeyIdConflict: 'KeyIdConflict',
  AudienceConflict: 'AudienceConflict',
  Expired: 'Expired',
  Created: 'Created',
  Rotated: 'Rotated',
  SecretRecreated: 'SecretRecreated',
  SecretModified: 'SecretModified',
  DeploymentReady: 'Ready',
  NoAudiences: 'NoAudiences',
  InvalidSpec: 'InvalidSpec',
  SigningKeysRotated: 'SigningKeysRotated',
  SigningKeysInvalid: 'SigningKeysInvalid',
} as const;
