import { readFileSync } from 'node:fs';

/** The first held-out breast-cancer row (30 features). */
export const BREAST_CANCER_ROW = [
  17.99, 10.38, 122.8, 1001, 0.1184, 0.2776, 0.3001, 0.1471, 0.2419, 0.07871, 1.095, 0.9053, 8.589,
  153.4, 0.006399, 0.04904, 0.05373, 0.01587, 0.03003, 0.006193, 25.38, 17.33, 184.6, 2019, 0.1622,
  0.6656, 0.7119, 0.2654, 0.4601, 0.1189,
];

/** A parity fixture written by models/build.py. */
export interface ParityFixture {
  model: string;
  version: string;
  rows: unknown[];
  probabilities?: number[][];
  predictions?: number[];
  labels?: number[];
}

/** Reads test/fixtures/parity/<model>-<version>.json. */
export function parityFixture(model: string, version: string): ParityFixture {
  return JSON.parse(
    readFileSync(`test/fixtures/parity/${model}-${version}.json`, 'utf8'),
  ) as ParityFixture;
}

/** A row of `n` distinct values derived from `seed`, for unique (uncached) inputs. */
export function uniqueRow(seed: number, n = 30): number[] {
  return Array.from({ length: n }, (_, i) => ((seed * 31 + i * 7) % 1000) / 100 + 0.5);
}
