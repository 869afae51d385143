import { swaggerUI } from '@hono/swagger-ui';
import { Hono } from 'hono';
import type { AppEnv } from '../deps.js';
import { buildOpenApiDocument } from '../openapi.js';

/** GET /openapi.json (built once, on first request) and GET /docs (Swagger UI). */
export function docsRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  let document: string | undefined;
  app.get('/openapi.json', (c) => {
    document ??= JSON.stringify(buildOpenApiDocument());
    c.header('Cache-Control', 'public, max-age=300');
    return c.body(document, 200, { 'Content-Type': 'application/json; charset=utf-8' });
  });
  app.get('/docs', swaggerUI({ url: '/openapi.json', title: 'inferq API' }));
  return app;
}
