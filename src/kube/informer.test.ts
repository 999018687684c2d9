import { describe, expect, it } from 'vitest';
import { withoutManagedFields } from './informer.ts';

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
