import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigSchema, loadConfig } from '../../src/shared/config.js';

/** The variables named in the first column of docs/configuration.md's table, with their defaults. */
function documented(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of readFileSync('docs/configuration.md', 'utf8').split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const [, names, defaults] = cells;
    if (!names || !defaults || !/^`[A-Z]/.test(names)) continue;
    const vars = [...names.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1] ?? '');
    const values = defaults.split(' / ');
    vars.forEach((name, i) => rows.set(name, values[i] ?? values[0] ?? ''));
  }
  return rows;
}

describe('docs/configuration.md', () => {
  const table = documented();
  const schema = Object.keys(ConfigSchema.shape);

  it('documents every setting of the config schema', () => {
    expect(schema.filter((name) => !table.has(name))).toEqual([]);
  });

  it('documents no setting the schema does not know', () => {
    expect([...table.keys()].filter((name) => !schema.includes(name))).toEqual([]);
  });

  it("states each plain default as the schema's own default", () => {
    const defaults = loadConfig({}) as Record<string, string | number | boolean | string[]>;
    for (const [name, stated] of table) {
      const m = /^`([^`]*)`$/.exec(stated);
      const value = defaults[name];
      // Only single literal defaults are compared; "(empty)", "<hostname>-<pid>" and the like are prose.
      if (!m || m[1] === undefined || typeof value === 'object' || /[<>]/.test(m[1])) continue;
      expect(`${value}`, name).toBe(m[1]);
    }
  });
});
