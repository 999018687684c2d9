import { describe, expect, it } from 'vitest';
import { age, formatNames, formatStructured, formatTable, humanDuration, outputFormat, timeAndDistance, withoutManagedFields } from './output.ts';
import { PluginUsageError } from '../../client/errors.ts';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe('humanDuration (kubectl\'s AGE)', () => {
  it.each([
    [-5 * S, '<invalid>'], [-500, '0s'], [0, '0s'], [45 * S, '45s'], [119 * S, '119s'], [2 * M, '2m'], [3 * M + 20 * S, '3m20s'],
    [17 * M, '17m'], [179 * M, '179m'], [3 * H, '3h'], [5 * H + 30 * M, '5h30m'], [30 * H, '30h'], [47 * H, '47h'],
    [2 * D, '2d'], [3 * D + 4 * H, '3d4h'], [40 * D, '40d'], [729 * D, '729d'], [2 * 365 * D + 30 * D, '2y30d'], [9 * 365 * D, '9y'],
  ])('%d ms is %s', (ms, text) => {
    expect(humanDuration(ms)).toBe(text);
  });

  it('ages a timestamp, with a fallback for none', () => {
    const now = Date.parse('2030-01-01T12:00:00Z');
    expect(age('2030-01-01T11:00:00Z', now)).toBe('60m');
    expect(age(undefined, now, 'never')).toBe('never');
    expect(timeAndDistance('2030-01-01T13:00:00Z', now)).toBe('2030-01-01T13:00:00Z (in 60m)');
    expect(timeAndDistance('2030-01-01T11:59:00Z', now)).toBe('2030-01-01T11:59:00Z (60s ago)');
    expect(timeAndDistance(undefined, now, 'never')).toBe('never');
  });
});

describe('formatTable', () => {
  it('pads columns by three spaces like kubectl and trims the last one', () => {
    expect(formatTable(['NAME', 'READY'], [['ci', 'True'], ['a-longer-name', 'False (SecretConflict)']])).toBe(
      'NAME            READY\nci              True\na-longer-name   False (SecretConflict)\n');
  });
});

describe('structured output', () => {
  it('accepts only the formats a command offers, as a usage error', () => {
    expect(outputFormat(undefined)).toBe('table');
    expect(outputFormat('yaml')).toBe('yaml');
    expect(() => outputFormat('wide')).toThrow(PluginUsageError);
    expect(() => outputFormat('table')).toThrow(PluginUsageError);
  });

  it('prints JSON and YAML, without managedFields', () => {
    const obj = withoutManagedFields({ metadata: { name: 'ci', managedFields: [{ manager: 'x' }] }, spec: { a: 1 } });
    expect(formatStructured(obj, 'json')).toBe('{\n  "metadata": {\n    "name": "ci"\n  },\n  "spec": {\n    "a": 1\n  }\n}\n');
    expect(formatStructured(obj, 'yaml')).toBe('metadata:\n  name: ci\nspec:\n  a: 1\n');
  });
});

describe('-o as kubectl takes it', () => {
  const LIST = ['json', 'yaml', 'name', 'wide', 'jsonpath'] as const;
  it.each([
    [undefined, LIST, 'table'],
    ['wide', LIST, 'wide'],
    ['name', LIST, 'name'],
    ['jsonpath={.items[*].metadata.name}', LIST, 'jsonpath={.items[*].metadata.name}'],
    ['json', ['json', 'yaml'] as const, 'json'],
  ] as const)('-o %s where %j are allowed is %s', (value, allowed, format) => {
    expect(outputFormat(value, allowed)).toBe(format);
  });

  it.each([
    ['wide', ['json', 'yaml'] as const, /-o wide is not supported here; use -o json or -o yaml$/],
    ['jsonpath={.a}', ['json', 'yaml'] as const, /use -o json or -o yaml/],
    ['jsonpath', LIST, /use -o json or -o yaml or -o name or -o wide or -o jsonpath=TEMPLATE/],
    ['jsonpath=', LIST, /-o jsonpath= needs a template/],
    ['jsonpath={.a', LIST, /unclosed \{/],
  ] as const)('refuses -o %s where %j are allowed', (value, allowed, message) => {
    expect(() => outputFormat(value, allowed)).toThrow(PluginUsageError);
    expect(() => outputFormat(value, allowed)).toThrow(message);
  });

  it('prints resource/name lines for -o name, and a template for -o jsonpath', () => {
    expect(formatNames('apikey.apikeys.dev', [{ metadata: { name: 'a' } }, { metadata: { name: 'b' } }])).toBe('apikey.apikeys.dev/a\napikey.apikeys.dev/b\n');
    expect(formatStructured({ items: [{ n: 1 }, { n: 2 }] }, 'jsonpath={.items[*].n}')).toBe('1 2');
  });

  it('leaves the header line out for --no-headers, and sizes the columns by the rows alone', () => {
    expect(formatTable(['NAME', 'DEPLOYMENT'], [['a', 'x'], ['bb', 'y']], false)).toBe('a    x\nbb   y\n');
  });
});
