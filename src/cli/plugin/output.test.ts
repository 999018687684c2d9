import { describe, expect, it } from 'vitest';
import { age, formatStructured, formatTable, humanDuration, outputFormat, timeAndDistance, withoutManagedFields } from './output.ts';
import { PluginUsageError } from './errors.ts';

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
