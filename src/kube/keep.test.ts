import { describe, expect, it } from 'vitest';
import { isInterned, keepAll, LAST_APPLIED_ANNOTATION, withInternedStrings, withOwnMetadataFields, withoutLastApplied, withoutManagedFields } from './keep.ts';
import type { KubeObject } from './types.ts';

const managedFields = [
  { manager: 'kubectl-create', operation: 'Update', fieldsV1: { 'f:data': {} } },
  { manager: 'apikey-operator', operation: 'Apply', fieldsV1: { 'f:metadata': {} } },
];
const obj = { metadata: { name: 'ci', namespace: 'team', resourceVersion: '7', managedFields }, data: { A: 'eA==' } };

describe('withoutManagedFields', () => {
  it('drops every field owner and keeps the rest of the object as it was', () => {
    const kept = withoutManagedFields<typeof obj>()(obj);
    expect(kept.metadata.managedFields).toBeUndefined();
    expect(kept).toEqual({ ...obj, metadata: { name: 'ci', namespace: 'team', resourceVersion: '7' } });
    expect(obj.metadata.managedFields).toHaveLength(2);
  });

  it('keeps only the entries of the manager it is given', () => {
    expect(withoutManagedFields<typeof obj>('apikey-operator')(obj).metadata.managedFields).toEqual([managedFields[1]]);
    expect(withoutManagedFields<typeof obj>('someone-else')(obj).metadata.managedFields).toBeUndefined();
  });
});

describe('withOwnMetadataFields', () => {
  const secret = {
    metadata: {
      name: 'ci',
      managedFields: [
        { manager: 'apikey-operator', operation: 'Update', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1: {
          'f:data': { '.': {}, 'f:API_KEY_ID': {} }, 'f:type': {},
          'f:metadata': { 'f:labels': { '.': {}, 'f:team': {} }, 'f:annotations': { 'f:note': {} }, 'f:ownerReferences': { 'k:{"uid":"u"}': {} } },
        } },
        { manager: 'apikey-operator', operation: 'Apply', fieldsV1: { 'f:data': { 'f:TOKEN_URL': {} } } },
        { manager: 'apikey-operator', operation: 'Update', subresource: 'status', fieldsV1: { 'f:status': {} } },
        { manager: 'kubectl-edit', operation: 'Update', fieldsV1: { 'f:metadata': { 'f:labels': { 'f:x': {} } } } },
      ],
    },
    data: { A: 'eA==' },
  };

  it('keeps of the manager\'s entries only the label and annotation keys they own', () => {
    expect(withOwnMetadataFields<typeof secret>('apikey-operator')(secret).metadata.managedFields).toEqual([
      { manager: 'apikey-operator', operation: 'Update', fieldsV1: { 'f:metadata': { 'f:labels': { '.': {}, 'f:team': {} }, 'f:annotations': { 'f:note': {} } } } },
      { manager: 'apikey-operator', operation: 'Apply' },
      { manager: 'apikey-operator', operation: 'Update', subresource: 'status' },
    ]);
  });

  it('leaves the rest of the object, and the object received, as they were', () => {
    const before = structuredClone(secret);
    const kept = withOwnMetadataFields<typeof secret>('apikey-operator')(secret);
    expect(kept.data).toEqual(secret.data);
    expect(secret).toEqual(before);
  });

  it('drops the field owners when the manager owns nothing', () => {
    expect(withOwnMetadataFields<typeof secret>('nobody')(secret).metadata.managedFields).toBeUndefined();
  });
});

describe('withoutLastApplied', () => {
  it.each([
    ['the only annotation', { [LAST_APPLIED_ANNOTATION]: '{"big":"copy"}' }, undefined],
    ['one of several', { [LAST_APPLIED_ANNOTATION]: '{}', 'apikeys.dev/rotate': 'now' }, { 'apikeys.dev/rotate': 'now' }],
  ])('drops kubectl\'s last-applied copy when it is %s', (_, annotations, left) => {
    const o = { metadata: { name: 'k', annotations } };
    expect(withoutLastApplied<typeof o>()(o).metadata.annotations).toEqual(left);
    expect(o.metadata.annotations[LAST_APPLIED_ANNOTATION]).toBeDefined();
  });

  it('returns an object without it as it is', () => {
    const o = { metadata: { name: 'k', annotations: { a: 'b' } } };
    expect(withoutLastApplied<typeof o>()(o)).toBe(o);
  });
});

describe('keepAll', () => {
  it('applies each in turn', () => {
    const o = { metadata: { name: 'k', annotations: { [LAST_APPLIED_ANNOTATION]: '{}' }, managedFields } };
    expect(keepAll<typeof o>(withoutLastApplied(), withoutManagedFields())(o)).toEqual({ metadata: { name: 'k', annotations: undefined, managedFields: undefined } });
  });
});

describe('withInternedStrings', () => {
  const parsed = () => JSON.parse(JSON.stringify({
    apiVersion: 'v1', kind: 'Secret', type: 'apikeys.dev/api-key',
    metadata: { name: 'ci', namespace: 'team-interned', uid: 'u-1', labels: { 'app.kubernetes.io/managed-by': 'apikey-operator' } },
    data: { API_KEY_ID: 'YWtfaW50ZXJuZWQ=', API_KEY_SECRET: 'c2VjcmV0LW5ldmVyLWludGVybmVk', TOKEN_URL: 'aHR0cDovL3Rva2Vu', AUDIENCE: 'aHR0cHM6Ly9h' },
    stringData: { type: 'stringdata-secret-never-interned' },
    status: { conditions: [{ type: 'Ready', status: 'True', reason: 'SecretReady', message: 'The credentials Secret is up to date' }] },
    spec: { permissions: ['deploy-interned'], secretHash: 'sha256:never-interned' },
  })) as KubeObject & Record<string, unknown>;

  it('leaves the object equal to what it was', () => {
    const before = parsed();
    expect(withInternedStrings()(parsed())).toEqual(before);
  });

  it('shares the repeating strings, and never a secret, a key id or a unique field', () => {
    withInternedStrings()(parsed());
    for (const shared of ['apikeys.dev/api-key', 'team-interned', 'apikey-operator', 'SecretReady', 'The credentials Secret is up to date',
      'deploy-interned', 'aHR0cDovL3Rva2Vu', 'aHR0cHM6Ly9h']) expect(isInterned(shared), shared).toBe(true);
    for (const own of ['c2VjcmV0LW5ldmVyLWludGVybmVk', 'YWtfaW50ZXJuZWQ=', 'stringdata-secret-never-interned', 'sha256:never-interned', 'u-1', 'ci'])
      expect(isInterned(own), own).toBe(false);
  });
});

describe('withOwnMetadataFields, shared', () => {
  it('gives Secrets of the same shape one frozen copy of their kept field owners', () => {
    const secret = (name: string) => JSON.parse(JSON.stringify({ metadata: { name, managedFields: [{
      manager: 'apikey-operator', operation: 'Update', fieldsV1: { 'f:data': { 'f:API_KEY_ID': {} }, 'f:metadata': { 'f:labels': { '.': {}, 'f:a': {} } } },
    }] } })) as KubeObject;
    const keep = withOwnMetadataFields<KubeObject>('apikey-operator');
    const [a, b] = [keep(secret('a')), keep(secret('b'))];
    expect(a.metadata!.managedFields![0]!.fieldsV1).toEqual({ 'f:metadata': { 'f:labels': { '.': {}, 'f:a': {} } } });
    expect(a.metadata!.managedFields![0]!.fieldsV1).toBe(b.metadata!.managedFields![0]!.fieldsV1);
    expect(Object.isFrozen(a.metadata!.managedFields![0]!.fieldsV1)).toBe(true);
  });
});

describe('withInternedStrings, bounded', () => {
  it('holds at most 8,192 strings, whatever tenants write: a full table starts again', () => {
    const keep = withInternedStrings();
    const first = 'https://first.bounded.test';
    keep(JSON.parse(JSON.stringify({ spec: { audiences: [first] } })) as KubeObject);
    expect(isInterned(first)).toBe(true);
    for (let i = 0; i < 8192; i++) keep(JSON.parse(JSON.stringify({ spec: { audiences: [`https://a${i}.bounded.test`] } })) as KubeObject);
    expect(isInterned(first)).toBe(false);
    expect(isInterned('https://a8191.bounded.test')).toBe(true);
  });
});
