import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { ApiError } from '../../shared/errors.js';
import type { AppEnv } from '../deps.js';
import { errors } from '../openapi/common.js';
import { buildOpenApiDocument } from '../openapi/document.js';
import { mount, routeApp, type RouteApp } from '../openapi/route.js';

/** Where /docs serves Swagger UI's files from. */
export const DOCS_ASSETS_PATH = '/docs/assets';

const SWAGGER_UI_DIR = dirname(
  createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'),
);

// The start-up script is a file, not inline, so a strict Content-Security-Policy in front of the
// service does not blank the page. validatorUrl: null keeps Swagger UI from sending the document
// to validator.swagger.io for its badge.
const INIT_SCRIPT = `window.addEventListener('load', function () {
  var root = document.getElementById('swagger-ui');
  window.ui = SwaggerUIBundle({
    url: root.dataset.url,
    domNode: root,
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
  });
});
`;

const PAGE = `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>inferq API</title>
    <link rel="stylesheet" href="${DOCS_ASSETS_PATH}/swagger-ui.css" />
    <link rel="icon" type="image/png" href="${DOCS_ASSETS_PATH}/favicon-32x32.png" sizes="32x32" />
  </head>
  <body>
    <div id="swagger-ui" data-url="/openapi.json"></div>
    <script src="${DOCS_ASSETS_PATH}/swagger-ui-bundle.js"></script>
    <script src="${DOCS_ASSETS_PATH}/init.js"></script>
  </body>
</html>
`;

type Bytes = Uint8Array<ArrayBuffer>;
const JS = 'text/javascript; charset=utf-8';
const packageFile = (name: string) => () => readFile(join(SWAGGER_UI_DIR, name));

/** What /docs/assets/{name} serves: files of swagger-ui-dist, and the page's start-up script. */
const ASSETS: Record<string, { type: string; read: () => Promise<Bytes> }> = {
  'swagger-ui-bundle.js': { type: JS, read: packageFile('swagger-ui-bundle.js') },
  'swagger-ui.css': { type: 'text/css; charset=utf-8', read: packageFile('swagger-ui.css') },
  'favicon-32x32.png': { type: 'image/png', read: packageFile('favicon-32x32.png') },
  'init.js': { type: JS, read: () => Promise.resolve(new TextEncoder().encode(INIT_SCRIPT)) },
};

interface Representation {
  bytes: Bytes;
  etag: string;
}

interface LoadedAsset {
  type: string;
  identity: Representation;
  /** Compressed once, at load (text only): gzipping the 1.7 MB bundle per request took 0.1-0.2 s. */
  gzip?: Representation;
}

const gzipAsync = promisify(gzip);
const tagOf = (bytes: Bytes) =>
  `"${createHash('sha256').update(bytes).digest('base64url').slice(0, 22)}"`;

async function loadAsset(type: string, bytes: Bytes): Promise<LoadedAsset> {
  const identity = { bytes, etag: tagOf(bytes) };
  if (type.startsWith('image/')) return { type, identity };
  const packed: Bytes = await gzipAsync(bytes);
  return { type, identity, gzip: { bytes: packed, etag: tagOf(packed) } };
}

/** Whether If-None-Match names `etag` (weakly compared, as RFC 9110 asks for GET). */
function notModified(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag.replace(/^W\//, '') === etag;
  });
}

/** Reads each asset once, on its first request, and tags it by content; a failed read is retried. */
function assetLoader(): (name: string) => Promise<LoadedAsset> | undefined {
  const loaded = new Map<string, Promise<LoadedAsset>>();
  return (name) => {
    const asset = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
    if (!asset) return undefined;
    let entry = loaded.get(name);
    if (!entry) {
      entry = asset.read().then((bytes) => loadAsset(asset.type, bytes));
      entry.catch(() => loaded.delete(name));
      loaded.set(name, entry);
    }
    return entry;
  };
}

const text = (type: string) => ({ [type]: { schema: z.string() } });

const DocumentRoute = createRoute({
  method: 'get',
  path: '/openapi.json',
  tags: ['operations'],
  summary: 'This document.',
  responses: {
    200: {
      description: 'OpenAPI 3.1.',
      content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
    },
  },
});

const PageRoute = createRoute({
  method: 'get',
  path: '/docs',
  tags: ['operations'],
  summary: 'Interactive API documentation.',
  responses: { 200: { description: 'HTML.', content: text('text/html') } },
});

const AssetRoute = createRoute({
  method: 'get',
  path: `${DOCS_ASSETS_PATH}/{name}`,
  tags: ['operations'],
  summary: "A file of /docs' page (Swagger UI, served from the package; no CDN).",
  request: {
    params: z.object({ name: z.enum(Object.keys(ASSETS) as [string, ...string[]]) }),
  },
  responses: {
    200: {
      description: 'The file (with an ETag; 304 when If-None-Match matches).',
      content: { ...text('text/javascript'), ...text('text/css'), ...text('image/png') },
    },
    304: { description: 'Not modified.' },
    ...errors('not_found'),
  },
});

/**
 * GET /openapi.json (the document of `root`, built once, on first request), GET /docs (Swagger
 * UI) and its assets under /docs/assets, served from the swagger-ui-dist package: no CDN.
 */
export function docsRoutes(root: OpenAPIHono<AppEnv>): RouteApp {
  const app = routeApp();
  let document: string | undefined;
  mount(app, DocumentRoute, (c) => {
    document ??= JSON.stringify(buildOpenApiDocument(root));
    c.header('Cache-Control', 'public, max-age=300');
    return c.body(document, 200, { 'Content-Type': 'application/json; charset=utf-8' });
  });
  mount(app, PageRoute, (c) => c.html(PAGE));

  const load = assetLoader();
  const missing = (path: string) => new ApiError('not_found', `No file ${path}.`);
  mount(
    app,
    AssetRoute,
    async (c) => {
      const asset = await load(c.req.param('name') ?? '');
      if (!asset) throw missing(c.req.path);
      const takesGzip = /\bgzip\b/i.test(c.req.header('accept-encoding') ?? '');
      const chosen = (takesGzip && asset.gzip) || asset.identity;
      c.header('ETag', chosen.etag);
      c.header('Cache-Control', 'public, max-age=3600');
      if (asset.gzip) c.header('Vary', 'Accept-Encoding');
      if (notModified(c.req.header('if-none-match'), chosen.etag)) return c.body(null, 304);
      // A Content-Encoding already set keeps the compression middleware off this answer.
      if (chosen === asset.gzip) c.header('Content-Encoding', 'gzip');
      return c.body(chosen.bytes, 200, { 'Content-Type': asset.type });
    },
    {
      exists: (c) => {
        throw missing(c.req.path);
      },
    },
  );
  return app;
}
