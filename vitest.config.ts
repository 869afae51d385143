import { defineConfig } from 'vitest/config';

/**
 * Files that load the whole machine (the saturation test pins busy loops to a CPU) or measure
 * timing that a loaded neighbour distorts (event-loop delay under the fuzz, failover recovery):
 * they run one at a time, after every other file.
 */
const ALONE = [
  'test/faults/saturation.test.ts',
  'test/faults/hostile-fuzz.test.ts',
  'test/faults/cluster-failover.test.ts',
];

export default defineConfig({
  test: {
    // A private redis-server when none answers at TEST_REDIS_URL (stopped by pid at the end).
    globalSetup: ['./test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default', './test/reporters/summary.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'suite',
          include: ['test/**/*.test.ts'],
          exclude: ALONE,
          // Two cores: more parallel files only add contention to timing-sensitive tests.
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'alone',
          include: ALONE,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
