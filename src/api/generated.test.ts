import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { generate, generatedPath } from '../../scripts/generate-types.ts';

it('src/api/generated.ts is what the CRD schemas generate (run npm run generate)', () => {
  expect(readFileSync(generatedPath, 'utf8')).toBe(generate());
});
