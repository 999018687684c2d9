import { describe, expect, it } from 'vitest';
import { startedForCompletion } from './invoked-as.ts';

describe('the single executable', () => {
  it.each([
    ['/home/u/.krew/bin/kubectl_complete-apikey', true],
    ['kubectl_complete-apikey', true],
    ['/usr/local/bin/kubectl-apikey', false],
    ['kubectl-apikey', false],
  ])('started as %s completes: %s', (argv0, expected) => {
    expect(startedForCompletion(argv0)).toBe(expected);
  });
});
