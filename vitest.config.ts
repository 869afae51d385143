import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A private redis-server when none answers at TEST_REDIS_URL (stopped by pid at the end).
    globalSetup: ['./test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: more parallel files only add contention to timing-sensitive tests.
    maxWorkers: 2,
    reporters: ['default', './test/reporters/summary.ts'],
  },
});
