import type { ModelVersion } from '../../shared/model-repository.js';
import type { ThreadTensor } from '../inference/thread-protocol.js';

/**
 * The JSON members of each row's classification result, `"prediction":1,"label":"benign",
 * "confidence":0.98,"probabilities":[0.02,0.98]`, written straight from the output tensor: the
 * same text as JSON.stringify of what toInstanceResults makes, without building the per-row
 * arrays and objects (the worker's largest cost in the issue-14 profile). Undefined when the
 * model is not a classifier with a float output, or when any value is not finite: the generic
 * path then shapes the rows (and fails the bad ones alone).
 */
export function classificationMembers(
  model: ModelVersion,
  outputs: Record<string, ThreadTensor>,
  rows: number,
): string[] | undefined {
  if (model.task !== 'classification') return undefined;
  // toInstanceResults' choice: the output named probabilities, else the first float output.
  const tensor =
    outputs.probabilities ?? Object.values(outputs).find((t) => t.type.startsWith('float'));
  if (!tensor?.type.startsWith('float') || rows === 0) return undefined;
  const data = tensor.data as Float32Array | Float64Array;
  const per = data.length / rows;
  if (!Number.isInteger(per) || per === 0) return undefined;
  const labels = model.labels?.map((l) => `,"label":${JSON.stringify(l)}`);
  const members = new Array<string>(rows);
  for (let i = 0; i < rows; i++) {
    const base = i * per;
    let best = 0;
    let list = '';
    for (let j = 0; j < per; j++) {
      const v = data[base + j]!;
      if (!Number.isFinite(v)) return undefined;
      if (v > data[base + best]!) best = j;
      list += j === 0 ? String(v) : `,${v}`;
    }
    const confidence = String(data[base + best]);
    members[i] =
      `"prediction":${best}${labels?.[best] ?? ''},"confidence":${confidence},"probabilities":[${list}]`;
  }
  return members;
}
