import { describe, expect, it } from 'vitest';
import { emptyForm, fieldOfRefusal, validateKeyForm, type KeyField, type KeyFormValues } from './key-form.ts';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const valid: KeyFormValues = { ...emptyForm(), name: 'ci-deployer', description: 'GitHub Actions' };

describe('the Add API Key form', () => {
  it('makes the spec of valid values', () => {
    const { spec, errors } = validateKeyForm({
      ...valid, permissions: ['deploy', 'read'], expiresAt: '2030-01-31', rotateEvery: '2160h', gracePeriod: '24h',
    }, 'airflow', NOW);
    expect(errors).toEqual({});
    expect(spec).toEqual({
      deploymentRef: { name: 'airflow' }, description: 'GitHub Actions', permissions: ['deploy', 'read'],
      expiresAt: '2030-01-31T00:00:00Z', rotation: { every: '2160h', gracePeriod: '24h' },
    });
  });

  it.each<[string, Partial<KeyFormValues>, KeyField]>([
    ['an empty name', { name: '' }, 'name'],
    ['a name with capitals', { name: 'CI' }, 'name'],
    ['a name too long', { name: 'a'.repeat(254) }, 'name'],
    ['a description over 1024 bytes', { description: 'é'.repeat(513) }, 'description'],
    ['no permission', { permissions: [] }, 'permissions'],
    ['an unknown permission', { permissions: ['admin'] }, 'permissions'],
    ['an expiry that is no time', { expiresAt: 'tomorrow' }, 'expiresAt'],
    ['an expiry in the past', { expiresAt: '2020-01-01T00:00:00Z' }, 'expiresAt'],
    ['a rotation under a minute', { rotateEvery: '30s' }, 'rotateEvery'],
    ['a rotation that is no duration', { rotateEvery: '90 days' }, 'rotateEvery'],
    ['a grace period that is no duration', { gracePeriod: '1d' }, 'gracePeriod'],
  ])('refuses %s next to its field', (_, change, field) => {
    const { spec, errors } = validateKeyForm({ ...valid, ...change }, 'airflow', NOW);
    expect(spec).toBeUndefined();
    expect(Object.keys(errors)).toEqual([field]);
  });

  it.each<[string, boolean, string]>([
    ['ApiKey.apikeys.dev "x" is invalid: spec.description: Too long: may not be more than 1024 bytes', false, 'description'],
    ['ApiKey.apikeys.dev "x" is invalid: spec.rotation.every: Invalid value: "30s": rotation.every must be ...', false, 'rotateEvery'],
    ['apikeys.apikeys.dev "x" already exists', true, 'name'],
    ['something else entirely', false, 'form'],
  ])('puts the apiserver\'s refusal "%s" next to its field', (message, exists, field) => {
    expect(fieldOfRefusal(message, exists)).toBe(field);
  });
});
