import { createHash } from 'node:crypto';
import { Hono, type Context } from 'hono';
import type { ModelEntry, ModelVersion } from '../../shared/model-repository.js';
import type { ApiDeps, AppEnv } from '../deps.js';

/** Body of GET /v1/models/{model}[/versions/{version}]. */
export function versionMetadata(entry: ModelEntry, v: ModelVersion) {
  return {
    name: v.name,
    version: v.version,
    versions: entry.versions.map((x) => x.version),
    default: entry.default,
    task: v.task,
    ...(v.labels ? { labels: v.labels } : {}),
    ...(v.features ? { features: v.features } : {}),
    ...(v.description ? { description: v.description } : {}),
    ...(v.card ? { card: v.card } : {}),
    inputs: v.inputs,
    outputs: v.outputs,
  };
}

function etagOf(v: ModelVersion): string {
  return `"${createHash('sha1').update(`${v.name}@${v.version}:${v.mtimeMs}`).digest('hex').slice(0, 16)}"`;
}

function sendCached(c: Context, etag: string, body: unknown) {
  c.header('ETag', etag);
  c.header('Cache-Control', 'public, max-age=60');
  const match = c.req.header('if-none-match');
  // Weak comparison (RFC 9110): compression turns the ETag into W/"...", which clients send back.
  const weak = (t: string) => t.trim().replace(/^W\//, '');
  if (match && match.split(',').some((t) => weak(t) === etag || t.trim() === '*'))
    return c.body(null, 304);
  return c.json(body);
}

/** GET /v1/models and the metadata of one model or version. */
export function modelRoutes(deps: ApiDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { repository } = deps;

  app.get('/v1/models', (c) =>
    c.json({
      models: repository.list().map((m) => ({
        name: m.name,
        versions: m.versions.map((v) => v.version),
        default: m.default,
        task: m.versions[0]?.task ?? 'raw',
      })),
    }),
  );

  app.get('/v1/models/:model', (c) => {
    const entry = repository.model(c.req.param('model'));
    const v = repository.resolve(entry.name);
    return sendCached(c, etagOf(v), versionMetadata(entry, v));
  });

  app.get('/v1/models/:model/versions/:version', (c) => {
    const entry = repository.model(c.req.param('model'));
    const v = repository.resolve(entry.name, c.req.param('version'));
    return sendCached(c, etagOf(v), versionMetadata(entry, v));
  });

  return app;
}
