import { readFileSync } from 'node:fs';
import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { z } from 'zod';
import { PreferHeaderSchema, V2ErrorSchema } from '../../shared/contracts/common.js';
import {
  V2InferResponseSchema,
  V2LiveSchema,
  V2ModelMetadataSchema,
  V2ModelReadySchema,
  V2ReadySchema,
  V2ServerMetadataSchema,
} from '../../shared/contracts/v2.js';
import { ApiError } from '../../shared/errors.js';
import type { ModelVersion } from '../../shared/model-repository.js';
import { parseOrThrow } from '../../shared/schemas.js';
import { InferRequestSchema } from '../../shared/v2-schemas.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { readJson } from '../http/request-body.js';
import { ownerOf } from '../http/owner.js';
import { runJob } from '../predict/predict-service.js';
import { parsePrefer, waitSeconds } from '../http/prefer.js';
import { addTiming } from '../http/request-frame.js';
import { inferResponse, planInfer } from './v2-infer.js';
import {
  API_KEY_SECURITY,
  json,
  ModelPath,
  ModelVersionPath,
  v2Errors,
} from '../openapi/common.js';
import { mount, routeApp, type RouteApp } from '../openapi/route.js';

const v2 = { tags: ['v2'], security: API_KEY_SECURITY };

const ServerRoute = createRoute({
  ...v2,
  method: 'get',
  path: '/v2',
  summary: 'Server metadata.',
  responses: {
    200: {
      description: 'Name, version and protocol extensions.',
      content: json(V2ServerMetadataSchema),
    },
    ...v2Errors(401, 429, 503),
  },
});

const LiveRoute = createRoute({
  method: 'get',
  path: '/v2/health/live',
  tags: ['v2'],
  summary: 'Liveness (open without an API key).',
  responses: { 200: { description: 'Live.', content: json(V2LiveSchema) } },
});

const ReadyRoute = createRoute({
  method: 'get',
  path: '/v2/health/ready',
  tags: ['v2'],
  summary: 'Readiness (open without an API key).',
  responses: {
    200: { description: 'Ready: `{"ready": true}`.', content: json(V2ReadySchema) },
    503: { description: 'Not ready: `{"ready": false}`.', content: json(V2ReadySchema) },
  },
});

/** The three routes of one model address: metadata, readiness and inference. */
function modelRoutes(base: string, params: z.ZodObject) {
  const metadata = createRoute({
    ...v2,
    method: 'get',
    path: base,
    summary: 'Model metadata.',
    request: { params },
    responses: {
      200: { description: 'Metadata.', content: json(V2ModelMetadataSchema) },
      ...v2Errors(401, 404, 429, 503),
    },
  });
  const ready = createRoute({
    ...v2,
    method: 'get',
    path: `${base}/ready`,
    summary: 'Whether the model can be served.',
    request: { params },
    responses: {
      200: { description: 'Ready: `ready` is true.', content: json(V2ModelReadySchema) },
      ...v2Errors(401, 404, 429),
      503: {
        description:
          'Not ready: `{"name", "ready": false}`, or `{"error": "..."}` when the replica ' +
          'refuses requests (shutting down, Redis unreachable).',
        content: json(z.union([V2ModelReadySchema, V2ErrorSchema])),
      },
    },
  });
  const infer = createRoute({
    ...v2,
    method: 'post',
    path: `${base}/infer`,
    summary: 'Inference through the same queue, workers and cache as /v1.',
    description:
      'There is no 202 here: the request waits up to `Prefer: wait=N` seconds (else ' +
      'DEFAULT_WAIT_S), capped by MAX_WAIT_S, then answers 503 to be retried.',
    request: {
      params,
      headers: PreferHeaderSchema,
      body: { required: true, content: json(InferRequestSchema) },
    },
    responses: {
      200: { description: 'Outputs.', content: json(V2InferResponseSchema) },
      ...v2Errors(400, 401, 404, 413, 429, 500, 503),
    },
  });
  return { metadata, ready, infer };
}

const BY_MODEL = modelRoutes('/v2/models/{model}', ModelPath);
const BY_VERSION = modelRoutes('/v2/models/{model}/versions/{version}', ModelVersionPath);

/** The package version, found by walking up from this file (checkout or dist/). */
function packageVersion(): string {
  let dir = new URL('.', import.meta.url);
  for (let i = 0; i < 6; i++, dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'inferq' && pkg.version) return pkg.version;
    } catch {
      // Not here: look one folder up.
    }
  }
  return '0.0.0';
}

/** Metadata of a model version in the protocol's form. */
function modelMetadata(deps: ApiDeps, v: ModelVersion): z.infer<typeof V2ModelMetadataSchema> {
  const entry = deps.repository.model(v.name);
  return {
    name: v.name,
    versions: entry.versions.filter((x) => x.served).map((x) => x.version),
    platform: 'onnxruntime_onnx',
    inputs: v.inputs,
    outputs: v.outputs,
  };
}

/**
 * The Open Inference Protocol (KServe V2 / Triton HTTP/REST) under /v2, on the same queue,
 * workers, batching and cache as /v1. Errors are rendered as {"error": "..."} by the app.
 */
export function v2Routes(deps: ApiDeps): RouteApp {
  const app = routeApp();
  const { config, repository } = deps;
  const server: z.infer<typeof V2ServerMetadataSchema> = {
    name: 'inferq',
    version: packageVersion(),
    extensions: [],
  };
  const version = (c: Context<AppEnv>) =>
    repository.resolve(c.req.param('model') ?? '', c.req.param('version'));
  // A bad model name or version is the 404 it names, as an unknown one is.
  const exists = version;

  mount(app, ServerRoute, (c) => c.json(server));
  mount(app, LiveRoute, (c) => c.json({ live: true } satisfies z.infer<typeof V2LiveSchema>));
  mount(app, ReadyRoute, async (c) => {
    c.header('Cache-Control', 'no-store');
    const ready =
      !deps.isShuttingDown() &&
      repository.size > 0 &&
      (await deps.redis.ping().then(
        () => true,
        () => false,
      ));
    return c.json({ ready }, ready ? 200 : 503);
  });

  for (const routes of [BY_MODEL, BY_VERSION]) {
    mount(app, routes.metadata, (c) => c.json(modelMetadata(deps, version(c))), { exists });
    mount(
      app,
      routes.ready,
      (c) => {
        const v = version(c);
        const ready = !deps.isShuttingDown();
        const body: z.infer<typeof V2ModelReadySchema> = { name: v.name, ready };
        return c.json(body, ready ? 200 : 503);
      },
      { exists },
    );
    mount(
      app,
      routes.infer,
      async (c) => {
        const model = version(c);
        const body = parseOrThrow(InferRequestSchema, await readJson(c));
        const plan = planInfer(model, body, config.MAX_INSTANCES);
        // The protocol has no 202: wait as long as asked (or the default), then 503 to retry.
        const waitS = waitSeconds(
          parsePrefer(c.req.header('prefer')).wait,
          config.DEFAULT_WAIT_S || config.MAX_WAIT_S,
          config.MAX_WAIT_S,
        );
        const run = await runJob(deps, plan.spec, {
          waitMs: Math.max(waitS, 1) * 1000,
          owner: ownerOf(c),
          requestId: c.get('requestId'),
          request: c.req.raw,
        });
        if (run.cacheMs !== undefined) addTiming(c, 'cache', run.cacheMs);
        if (run.status === 'accepted') {
          throw new ApiError(
            'unavailable',
            `The inference did not finish within ${waitS} s; retry (job ${run.id} keeps running).`,
            undefined,
            1,
          );
        }
        if (!run.cached) {
          addTiming(c, 'queue', run.result.queueMs);
          addTiming(c, 'infer', run.result.inferMs);
        }
        return c.json(inferResponse(plan, run.result, body.id));
      },
      { exists },
    );
  }

  return app;
}
