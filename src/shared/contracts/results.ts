import { z } from 'zod';
import { DatatypeSchema } from './common.js';

/** A raw output tensor of one instance. */
export const RawTensorSchema = z
  .strictObject({
    shape: z.array(z.number().int()),
    datatype: DatatypeSchema,
    data: z.array(z.number()),
  })
  .meta({ id: 'RawTensor' });
export type RawTensor = z.infer<typeof RawTensorSchema>;

const classification = {
  prediction: z.number().int().meta({ description: 'The class index.' }),
  label: z.string().optional(),
  confidence: z.number(),
  probabilities: z.array(z.number()),
};
const regression = { prediction: z.union([z.number(), z.array(z.number())]) };
const raw = { outputs: z.record(z.string(), RawTensorSchema) };

/** The result of one classification instance. */
export const ClassificationResultSchema = z
  .strictObject(classification)
  .meta({ id: 'ClassificationResult' });
/** The result of one regression instance. */
export const RegressionResultSchema = z.strictObject(regression).meta({ id: 'RegressionResult' });
/** The result of one instance of a `raw` model: its output tensors by name. */
export const RawResultSchema = z.strictObject(raw).meta({ id: 'RawResult' });

/** The result of one instance, by the model's task (API.md "The prediction result"). */
export const InstanceResultSchema = z
  .union([ClassificationResultSchema, RegressionResultSchema, RawResultSchema])
  .meta({ id: 'InstanceResult' });
export type InstanceResult = z.infer<typeof InstanceResultSchema>;

/** The fields of each result variant, for objects that carry a result beside their own fields. */
export const RESULT_SHAPES = [classification, regression, raw] as const;

/** The predict body without its envelope: one result, or `predictions` for many. */
export const ResultBodySchema = z
  .union([InstanceResultSchema, z.strictObject({ predictions: z.array(InstanceResultSchema) })])
  .meta({ id: 'ResultBody' });
export type ResultBody = z.infer<typeof ResultBodySchema>;

const envelope = {
  id: z.string().meta({ description: 'Id of the job that computed the result.' }),
  model: z.string(),
  version: z.string(),
  cached: z.boolean().meta({ description: 'Whether the result came from the result cache.' }),
};

/** The envelope of a finished online prediction. */
export const PredictionEnvelopeSchema = z.strictObject(envelope).meta({ id: 'PredictionEnvelope' });
export type PredictionEnvelope = z.infer<typeof PredictionEnvelopeSchema>;

/** 200 for one instance (`features`): the envelope and the instance's result. */
export const SinglePredictionSchema = z
  .union([
    z.strictObject({ ...envelope, ...classification }),
    z.strictObject({ ...envelope, ...regression }),
    z.strictObject({ ...envelope, ...raw }),
  ])
  .meta({ id: 'SinglePrediction' });
export type SinglePrediction = z.infer<typeof SinglePredictionSchema>;

/** 200 for many instances (`instances`): results in input order. */
export const BatchPredictionSchema = z
  .strictObject({ ...envelope, predictions: z.array(InstanceResultSchema) })
  .meta({ id: 'BatchPrediction' });
export type BatchPrediction = z.infer<typeof BatchPredictionSchema>;

/** 200 of a prediction. */
export const PredictionSchema = z
  .union([SinglePredictionSchema, BatchPredictionSchema])
  .meta({ id: 'Prediction' });
export type Prediction = z.infer<typeof PredictionSchema>;

/** 202: queued and not finished in time; follow `links.self`. */
export const AcceptedJobSchema = z
  .strictObject({
    id: z.string(),
    status: z.enum(['queued', 'active']),
    links: z.strictObject({ self: z.string().meta({ example: '/v1/jobs/7fda06b2-...' }) }),
  })
  .meta({ id: 'Accepted' });
export type AcceptedJob = z.infer<typeof AcceptedJobSchema>;
