#!/usr/bin/env node
// Runs the TypeScript sources through tsx's loader (same process, so killing this pid stops
// everything), or the compiled dist/ when the sources are not shipped.
import { existsSync } from 'node:fs';

const src = new URL('../src/cli/main.ts', import.meta.url);
if (existsSync(src)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(src.href);
} else {
  await import(new URL('../dist/src/cli/main.js', import.meta.url).href);
}
