// After `tsc`: every import in dist/ (JavaScript and declarations) must be a file of dist/, a
// Node built-in or a dependency of this package; a dynamic `import('x')` may also name an
// optional peer dependency (the Parquet libraries, loaded only when a Parquet file is used).
// A client that reached server code (bullmq, onnxruntime-node, hono, zod, ...) fails the build
// here instead of on a user's machine.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const dist = join(here, 'dist');
/** @type {{ dependencies?: Record<string, string>, peerDependenciesMeta?: Record<string, { optional?: boolean }> }} */
// eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- JSON.parse in a plain .mjs
const manifest = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8'));
const { dependencies = {}, peerDependenciesMeta = {} } = manifest;
const allowed = new Set([...Object.keys(dependencies), ...builtinModules]);
const lazy = new Set(
  Object.entries(peerDependenciesMeta)
    .filter(([, meta]) => meta.optional)
    .map(([name]) => name),
);

// `from '...'`, `import '...'`, `import('...')`, `export ... from '...'`.
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*(\(?)\s*)['"]([^'"]+)['"]/g;

/**
 * The package a bare specifier names: `a` of `a/b`, `@s/a` of `@s/a/b`.
 * @param {string} spec
 */
const packageOf = (spec) => spec.split('/', spec.startsWith('@') ? 2 : 1).join('/');

const problems = [];
for (const entry of readdirSync(dist, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !/\.(js|d\.ts)$/.test(entry.name)) continue;
  const file = join(entry.parentPath ?? entry.path, entry.name);
  // The CLI's declarations do not ship (package.json `files`): only what ships is checked.
  if (file.endsWith('.d.ts') && relative(dist, file).startsWith(`cli${sep}`)) continue;
  for (const match of readFileSync(file, 'utf8').matchAll(SPECIFIER)) {
    const spec = /** @type {string} */ (match[2]);
    const dynamic = match[1] === '(' && file.endsWith('.js');
    const where = relative(here, file);
    if (spec.startsWith('.')) {
      const target = resolve(dirname(file), spec);
      const found = file.endsWith('.d.ts') ? target.replace(/\.js$/, '.d.ts') : target;
      if (!existsSync(found)) problems.push(`${where}: '${spec}' is not in dist`);
    } else if (dynamic && lazy.has(packageOf(spec))) {
      continue;
    } else if (!allowed.has(spec.replace(/^node:/, '')) && !allowed.has(packageOf(spec))) {
      problems.push(`${where}: '${spec}' is not a dependency of the client package`);
    }
  }
}

if (problems.length > 0) {
  process.stderr.write(
    `check-imports: ${problems.length} import(s) the client package cannot satisfy:\n` +
      problems.map((p) => `  ${p}\n`).join(''),
  );
  process.exitCode = 1;
}
