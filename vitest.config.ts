import { defineConfig } from 'vitest/config';
import { FinalLastSequencer } from './test/setup/sequencer.ts';

export default defineConfig({
  test: {
    sequence: { sequencer: FinalLastSequencer },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          globalSetup: ['test/setup/global.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
