/**
 * The Add API Key form: its fields, checked the way the ApiKey CRD checks
 * them (so most mistakes are shown before the apiserver is asked), and the
 * apiserver's own refusal mapped back to the field it names.
 */
import type { ApiKeySpec, Permission } from '../api/index.ts';
import { isPermission, PERMISSIONS } from '../api/index.ts';
import { parseDuration } from '../shared/duration.ts';
import { checkAllowedNetworks } from '../shared/networks.ts';

export type KeyField = 'name' | 'description' | 'permissions' | 'expiresAt' | 'rotateEvery' | 'gracePeriod' | 'allowedNetworks';

export interface KeyFormValues {
  name: string;
  description: string;
  permissions: string[];
  expiresAt: string;
  rotateEvery: string;
  gracePeriod: string;
  /** CIDRs as typed: one a line, or separated by commas or spaces; empty: anywhere. */
  allowedNetworks: string;
}

export type FieldErrors = Partial<Record<KeyField | 'form', string>>;

/** A DNS-1123 subdomain, as Kubernetes requires of an object's name. */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
/** The CRD's patterns of rotation.every and rotation.gracePeriod. */
const DURATION = /^([0-9]{1,6}h)?([0-9]{1,8}m)?([0-9]{1,10}s)?$/;

export function emptyForm(): KeyFormValues {
  return { name: '', description: '', permissions: ['deploy'], expiresAt: '', rotateEvery: '', gracePeriod: '', allowedNetworks: '' };
}

export function formValues(body: URLSearchParams): KeyFormValues {
  const s = (k: string) => (body.get(k) ?? '').trim();
  return {
    name: s('name'), description: body.get('description') ?? '', permissions: body.getAll('permissions'),
    expiresAt: s('expiresAt'), rotateEvery: s('rotateEvery'), gracePeriod: s('gracePeriod'), allowedNetworks: s('allowedNetworks'),
  };
}

/** An expiry as the person typed it: RFC 3339, or a date (midnight UTC). */
function expiryOf(v: string): string | undefined {
  if (DATE.test(v)) return `${v}T00:00:00Z`;
  return RFC3339.test(v) && !Number.isNaN(Date.parse(v)) ? v : undefined;
}

/** The ApiKey spec of valid values, or the errors by field. */
export function validateKeyForm(v: KeyFormValues, deployment: string, now = Date.now()): { spec?: ApiKeySpec; errors: FieldErrors } {
  const errors: FieldErrors = {};
  if (v.name === '') errors.name = 'Give the key a name.';
  else if (v.name.length > 253 || !DNS_SUBDOMAIN.test(v.name)) {
    errors.name = 'Use lowercase letters, digits, "-" and ".", starting and ending with a letter or digit (at most 253).';
  }
  if (Buffer.byteLength(v.description) > 1024) errors.description = 'At most 1024 bytes.';
  const permissions = [...new Set(v.permissions)];
  if (permissions.length === 0) errors.permissions = 'Choose at least one permission.';
  else if (!permissions.every(isPermission)) errors.permissions = `Permissions are ${PERMISSIONS.join(' and ')}.`;
  let expiresAt: string | undefined;
  if (v.expiresAt !== '') {
    expiresAt = expiryOf(v.expiresAt);
    if (!expiresAt) errors.expiresAt = 'A date such as 2030-01-31, or an RFC 3339 time such as 2030-01-31T12:00:00Z.';
    else if (Date.parse(expiresAt) <= now) errors.expiresAt = 'This time has passed; choose one in the future.';
  }
  if (v.rotateEvery !== '') {
    const ms = DURATION.test(v.rotateEvery) ? parseDuration(v.rotateEvery) : undefined;
    if (ms === undefined || ms < 60_000) errors.rotateEvery = 'A duration of at least 1m, such as 2160h (90 days).';
  }
  if (v.gracePeriod !== '' && (!DURATION.test(v.gracePeriod) || parseDuration(v.gracePeriod) === undefined)) {
    errors.gracePeriod = 'A duration such as 1h, 30m or 0s.';
  }
  const networks = networksOf(v.allowedNetworks);
  if ('error' in networks) errors.allowedNetworks = networks.error;
  if (Object.keys(errors).length > 0 || 'error' in networks) return { errors };
  const spec: ApiKeySpec = { deploymentRef: { name: deployment }, permissions: permissions as Permission[] };
  if (v.description !== '') spec.description = v.description;
  if (networks.list.length > 0) spec.allowedNetworks = networks.list;
  if (expiresAt) spec.expiresAt = expiresAt;
  if (v.rotateEvery || v.gracePeriod) {
    spec.rotation = { ...(v.rotateEvery ? { every: v.rotateEvery } : {}), ...(v.gracePeriod ? { gracePeriod: v.gracePeriod } : {}) };
  }
  return { spec, errors };
}

/** The CIDRs of the allowed-networks field (one a line, or separated by commas or spaces), checked as the CRD checks them. */
export function networksOf(typed: string): { list: string[] } | { error: string } {
  const entries = typed.split(/[\s,]+/).filter((e) => e !== '');
  try {
    return { list: checkAllowedNetworks(entries) };
  } catch (err) {
    return { error: `${(err as Error).message}.` };
  }
}

const FIELD_PATHS: [RegExp, KeyField][] = [
  [/spec\.allowedNetworks/, 'allowedNetworks'],
  [/metadata\.name/, 'name'],
  [/spec\.description/, 'description'],
  [/spec\.permissions/, 'permissions'],
  [/spec\.expiresAt/, 'expiresAt'],
  [/spec\.rotation\.every/, 'rotateEvery'],
  [/spec\.rotation\.gracePeriod/, 'gracePeriod'],
];

/** The field an apiserver refusal (422 Invalid, 409 AlreadyExists) is about; 'form' when it names none. */
export function fieldOfRefusal(message: string, alreadyExists: boolean): KeyField | 'form' {
  if (alreadyExists) return 'name';
  return FIELD_PATHS.find(([re]) => re.test(message))?.[1] ?? 'form';
}
