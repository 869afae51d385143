#!/usr/bin/env node
// Runs the compiled CLI in dist/ (made by `npm run build`, which `npm start` runs first). Only in
// a checkout whose sources changed since the last build (development, tests) does it run the
// TypeScript sources through tsx's loader instead, in this same process, so killing this pid
// stops everything. An installed package or the Docker image has no src/: always dist/.
import { existsSync, readdirSync, statSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const compiled = new URL('dist/cli/main.js', root);
const sources = new URL('src/', root);
// Written by `npm run build` after the compiler finished (it skips unchanged outputs).
const stamp = new URL('dist/.build-stamp', root);

/** The newest modification time of a file under `dir`, ms. */
function newestMtimeMs(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    newest = Math.max(newest, statSync(`${entry.parentPath ?? entry.path}/${entry.name}`).mtimeMs);
  }
  return newest;
}

function distIsCurrent() {
  if (!existsSync(compiled)) return false;
  if (!existsSync(sources)) return true;
  return existsSync(stamp) && statSync(stamp).mtimeMs >= newestMtimeMs(sources);
}

if (distIsCurrent()) {
  await import(compiled.href);
} else if (existsSync(sources)) {
  let tsx;
  try {
    tsx = await import('tsx/esm/api');
  } catch {
    console.error('inferq: dist/ is missing or out of date; run `npm run build` first.');
    process.exit(1);
  }
  tsx.register();
  await import(new URL('cli/main.ts', sources).href);
} else {
  console.error('inferq: dist/cli/main.js is missing; this package was not built.');
  process.exit(1);
}
