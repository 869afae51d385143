import { defineConfig } from 'vitest/config';

/**
 * `npm run test:unit`: the tests that need no Redis and start no process (pure logic, schemas,
 * config, the model repository, deployment files), in seconds. `npm test` runs them too.
 */
export default defineConfig({
  test: {
    include: [
      'test/api/group-commit.test.ts',
      'test/api/ndjson-item.test.ts',
      'test/cli/help.test.ts',
      'test/cli/rows.test.ts',
      'test/client/streams.test.ts',
      'test/deploy/*.test.ts',
      'test/docs/*.test.ts',
      'test/shared/config.test.ts',
      'test/shared/errors.test.ts',
      'test/shared/model-repository.test.ts',
      'test/shared/schemas.test.ts',
      'test/shared/shards.test.ts',
      'test/worker/micro-batcher.test.ts',
    ],
    testTimeout: 30_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
