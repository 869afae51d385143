/**
 * The client's types are the zod contracts' types: src/shared/contracts/plain-types.ts is emitted
 * from the schemas (so the client package needs no zod), kept in step here, and checked equal to
 * z.infer of each schema by the type checker.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { format, resolveConfig } from 'prettier';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import type * as Client from '../../src/client/types.js';
import type { BatchResultLineSchema, BatchViewSchema } from '../../src/shared/contracts/batches.js';
import type { ErrorBodySchema } from '../../src/shared/contracts/common.js';
import { emitClientTypes } from '../../src/shared/contracts/emit-types.js';
import type { JobEventSchema, JobViewSchema } from '../../src/shared/contracts/jobs.js';
import type { LiveAnswerSchema } from '../../src/shared/contracts/live.js';
import type { ModelListSchema, ModelMetadataSchema } from '../../src/shared/contracts/models.js';
import type {
  AcceptedJobSchema,
  InstanceResultSchema,
  PredictionSchema,
} from '../../src/shared/contracts/results.js';
import type {
  V2InferResponseSchema,
  V2ModelMetadataSchema,
} from '../../src/shared/contracts/v2.js';

import type { JobView as ServerJobView } from '../../src/api/jobs/job-service.js';
import type { PredictionBody } from '../../src/api/predict/predict-service.js';

const FILE = 'src/shared/contracts/plain-types.ts';

/** True when A and B are assignable both ways. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

// Fails to compile (npm run typecheck) when a client type and its schema part ways.
const SAME: true[] = [
  true satisfies Same<Client.JobView, z.infer<typeof JobViewSchema>>,
  true satisfies Same<Client.JobEvent, z.infer<typeof JobEventSchema>>,
  true satisfies Same<Client.BatchResultLine, z.infer<typeof BatchResultLineSchema>>,
  true satisfies Same<Client.BatchView, z.infer<typeof BatchViewSchema>>,
  true satisfies Same<Client.ModelMetadata, z.infer<typeof ModelMetadataSchema>>,
  true satisfies Same<Client.ModelList, z.infer<typeof ModelListSchema>>,
  true satisfies Same<Client.InstanceResult, z.infer<typeof InstanceResultSchema>>,
  true satisfies Same<
    Client.SinglePrediction | Client.BatchPrediction,
    z.infer<typeof PredictionSchema>
  >,
  true satisfies Same<Client.AcceptedJob, z.infer<typeof AcceptedJobSchema>>,
  true satisfies Same<Client.ErrorBody, z.infer<typeof ErrorBodySchema>>,
  true satisfies Same<Client.LiveAnswer, z.infer<typeof LiveAnswerSchema>>,
  true satisfies Same<Client.V2InferResponse, z.infer<typeof V2InferResponseSchema>>,
  true satisfies Same<Client.V2ModelMetadata, z.infer<typeof V2ModelMetadataSchema>>,
  // Server types still written out by hand elsewhere are held to the contracts too.
  true satisfies Same<ServerJobView, z.infer<typeof JobViewSchema>>,
  true satisfies Same<PredictionBody, z.infer<typeof PredictionSchema>>,
];

describe('the contracts as plain types', () => {
  it(`${FILE} is what the schemas emit (UPDATE_CONTRACT_TYPES=1 rewrites it)`, async () => {
    const options = await resolveConfig(FILE);
    const text = await format(emitClientTypes(), { ...options, parser: 'typescript' });
    if (process.env.UPDATE_CONTRACT_TYPES) writeFileSync(FILE, text);
    expect(readFileSync(FILE, 'utf8')).toBe(text);
  });

  it('imports nothing, so the client package ships it without zod', () => {
    const text = readFileSync(FILE, 'utf8');
    expect(text).not.toMatch(/\bimport\b|\brequire\(/);
    expect(text).toMatch(/export type JobView = \{/);
    expect(SAME.every(Boolean)).toBe(true);
  });
});
