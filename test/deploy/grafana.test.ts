/**
 * Static checks of the Grafana dashboard (k8s/grafana/inferq-dashboard.json): it parses, its
 * panels are laid out without overlap, and every query names only metrics that inferq exports
 * (read from the metric definitions in src/) with balanced PromQL brackets.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

interface Target {
  expr: string;
  refId: string;
}
interface Panel {
  id: number;
  title: string;
  type: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets: Target[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string }[] };
}

const dashboard = JSON.parse(
  readFileSync('k8s/grafana/inferq-dashboard.json', 'utf8'),
) as Dashboard;

/** Metric names defined in the service (prom-client `name: 'inferq_...'`). */
function exportedMetrics(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (path.endsWith('.ts'))
        for (const [, name] of readFileSync(path, 'utf8').matchAll(/name: '(inferq_[a-z_]+)'/g))
          if (name) names.add(name);
    }
  };
  walk('src');
  return names;
}

function balanced(expr: string): boolean {
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  const stack: string[] = [];
  for (const ch of expr.replace(/"[^"]*"/g, '""')) {
    if ('([{'.includes(ch)) stack.push(ch);
    else if (ch in pairs && stack.pop() !== pairs[ch]) return false;
  }
  return stack.length === 0;
}

describe('Grafana dashboard', () => {
  it('has a uid, a title and a Prometheus data source variable', () => {
    expect(dashboard.uid).toMatch(/^[a-z0-9-]+$/);
    expect(dashboard.title).toBe('inferq');
    expect(dashboard.templating.list).toContainEqual(
      expect.objectContaining({ name: 'datasource', type: 'datasource' }),
    );
  });

  it('covers request rate and latency by route, cache hits, queue depth, batch size, inference time and workers', () => {
    const all = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)).join('\n');
    for (const needed of [
      'inferq_http_requests_total',
      'inferq_http_request_duration_seconds_bucket',
      'inferq_cache_requests_total',
      'inferq_queue_jobs',
      'inferq_batch_chunks',
      'inferq_batch_size_bucket',
      'inferq_inference_duration_seconds_bucket',
      'inferq_models_loaded',
    ])
      expect(all).toContain(needed);
    expect(all).toMatch(/by \(le, route\)/);
  });

  it('queries only metrics the service exports, with balanced brackets and unique ref ids', () => {
    const exported = exportedMetrics();
    expect(exported.size).toBeGreaterThan(10);
    for (const panel of dashboard.panels) {
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      expect(new Set(panel.targets.map((t) => t.refId)).size).toBe(panel.targets.length);
      for (const { expr } of panel.targets) {
        expect(balanced(expr), expr).toBe(true);
        for (const [name] of expr.matchAll(/inferq_[a-z_]+/g)) {
          const base = name.replace(/_(bucket|sum|count)$/, '');
          expect(exported.has(name) || exported.has(base), `${name} in "${panel.title}"`).toBe(
            true,
          );
        }
      }
    }
  });

  it('lays out panels on the 24-column grid without overlaps and with unique ids', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const { gridPos: g, title } of dashboard.panels) {
      expect(g.x + g.w, title).toBeLessThanOrEqual(24);
      for (let x = g.x; x < g.x + g.w; x++)
        for (let y = g.y; y < g.y + g.h; y++) {
          expect(cells.has(`${x},${y}`), `${title} overlaps at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
    }
  });
});
