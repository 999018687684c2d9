import { describe, expect, it } from 'vitest';
import { PluginUsageError } from '../../client/errors.ts';
import { renderJsonPath } from './jsonpath.ts';

const list = {
  kind: 'List',
  items: [
    { metadata: { name: 'ci', labels: { team: 'ci' } }, spec: { permissions: ['deploy'] }, status: { keyId: 'ak_1', conditions: [{ type: 'Ready', status: 'True' }] } },
    { metadata: { name: 'reader' }, spec: { permissions: ['read', 'deploy'] }, status: { keyId: 'ak_2', conditions: [{ type: 'Ready', status: 'False' }] } },
    { metadata: { name: 'pending' }, spec: {} },
  ],
};

describe("renderJsonPath (kubectl's -o jsonpath dialect)", () => {
  it.each([
    ['{.items[*].metadata.name}', 'ci reader pending'],
    ['{.items[0].status.keyId}', 'ak_1'],
    ['{.items[-1].metadata.name}', 'pending'],
    ['{.items[0:2].metadata.name}', 'ci reader'],
    ['{range .items[*]}{.metadata.name}{"\\n"}{end}', 'ci\nreader\npending\n'],
    ['{range .items[*]}{.metadata.name}{"\\t"}{.status.keyId}{"\\n"}{end}', 'ci\tak_1\nreader\tak_2\npending\t\n'],
    ['{range .items}[{.metadata.name}]{end}', '[ci][reader][pending]'],
    ['{.items[?(@.status.keyId=="ak_2")].metadata.name}', 'reader'],
    ['{.items[?(@.metadata.name!="ci")].metadata.name}', 'reader pending'],
    ['{.items[?(@.status)].metadata.name}', 'ci reader'],
    ['{.items[0].status.conditions[?(@.type=="Ready")].status}', 'True'],
    ['{.items[0].metadata.labels}', '{"team":"ci"}'],
    ["{.items[0].metadata.labels['team']}", 'ci'],
    ['{.items[1].spec.permissions}', '["read","deploy"]'],
    ['{.items[1].spec.permissions[*]}', 'read deploy'],
    ['{..keyId}', 'ak_1 ak_2'],
    ['{.kind}', 'List'],
    ['{$.kind}', 'List'],
    ['kind={.kind} count: {.items[2].metadata.name}', 'kind=List count: pending'],
    ['{.items[2].status.keyId}', ''],
    ['{.nothing.here}', ''],
    ['{range .items[*]}{$.kind}/{@.metadata.name} {end}', 'List/ci List/reader List/pending '],
    ['{"}"}', '}'],
  ])('%s prints %j', (template, out) => {
    expect(renderJsonPath(template, list)).toBe(out);
  });

  it('reads a single object too, as for describe or create --dry-run', () => {
    expect(renderJsonPath('{.status.keyId}', list.items[0])).toBe('ak_1');
  });

  it.each([
    ['{.items[*].metadata.name', /unclosed \{/],
    ['{range .items[*]}{.metadata.name}', /\{range\} without \{end\}/],
    ['{.kind}{end}', /\{end\} without \{range\}/],
    ['{.items[abc]}', /\[abc\] is not supported/],
    ['{.items[0}', /unclosed \[/],
    ['{.items[?(@.a==bare)]}', /"bare" is not a literal/],
  ])('refuses %s as a usage error', (template, message) => {
    expect(() => renderJsonPath(template, list)).toThrow(PluginUsageError);
    expect(() => renderJsonPath(template, list)).toThrow(message);
  });
});
