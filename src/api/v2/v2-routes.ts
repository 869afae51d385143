import { readFileSync } from 'node:fs';
import { Hono, type Context } from 'hono';
import { setMetric } from 'hono/timing';
import { ApiError } from '../../shared/errors.js';
import type { ModelVersion } from '../../shared/model-repository.js';
import { parseOrThrow } from '../../shared/schemas.js';
import { InferRequestSchema } from '../../shared/v2-schemas.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { readJson } from '../http/request-body.js';
import { ownerOf } from '../http/owner.js';
import { runJob } from '../predict/predict-service.js';
import { parsePrefer, waitSeconds } from '../http/prefer.js';
import { inferResponse, planInfer } from './v2-infer.js';

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
function modelMetadata(deps: ApiDeps, v: ModelVersion) {
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
export function v2Routes(deps: ApiDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { config, repository } = deps;
  const server = { name: 'inferq', version: packageVersion(), extensions: [] as string[] };
  const version = (c: Context<AppEnv>) =>
    repository.resolve(c.req.param('model') ?? '', c.req.param('version'));

  app.get('/v2', (c) => c.json(server));
  app.get('/v2/health/live', (c) => c.json({ live: true }));
  app.get('/v2/health/ready', async (c) => {
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

  for (const base of ['/v2/models/:model', '/v2/models/:model/versions/:version']) {
    app.get(base, (c) => c.json(modelMetadata(deps, version(c))));
    app.get(`${base}/ready`, (c) => {
      const v = version(c);
      const ready = !deps.isShuttingDown();
      return c.json({ name: v.name, ready }, ready ? 200 : 503);
    });
    app.post(`${base}/infer`, async (c) => {
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
      });
      if (run.cacheMs !== undefined) setMetric(c, 'cache', run.cacheMs);
      if (run.status === 'accepted') {
        throw new ApiError(
          'unavailable',
          `The inference did not finish within ${waitS} s; retry (job ${run.id} keeps running).`,
          undefined,
          1,
        );
      }
      if (!run.cached) {
        setMetric(c, 'queue', run.result.queueMs);
        setMetric(c, 'infer', run.result.inferMs);
      }
      return c.json(inferResponse(plan, run.result, body.id));
    });
  }

  return app;
}
