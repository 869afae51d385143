import { z } from 'zod';
import * as v2Requests from '../v2-schemas.js';
import * as batches from './batches.js';
import * as common from './common.js';
import * as jobs from './jobs.js';
import * as live from './live.js';
import * as models from './models.js';
import * as ops from './ops.js';
import * as results from './results.js';
import * as v2 from './v2.js';

const MODULES = [batches, common, jobs, live, models, ops, results, v2, v2Requests];

// Emits the contracts' types as plain TypeScript (plain-types.ts) from the contracts' JSON Schema, so
// the client package ships them without zod (whose 8 MB would not suit a small client).

/** Component ids whose TypeScript name differs (an id of the document stays as it was). */
const TS_NAMES: Record<string, string> = {
  Error: 'ErrorBody',
  Job: 'JobView',
  Batch: 'BatchView',
  Accepted: 'AcceptedJob',
  Live: 'HealthLive',
  Ready: 'HealthReadyOk',
  Unavailable: 'HealthUnavailable',
};

type Schema = {
  $ref?: string;
  type?: string | string[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  description?: string;
};

const nameOf = (id: string) => TS_NAMES[id] ?? id;
const KEY_RE = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const doc = (text: string | undefined, indent: string) =>
  text ? `${indent}/** ${text.replaceAll('*/', '*\\/')} */\n` : '';

function objectType(s: Schema, indent: string): string {
  const props = Object.entries(s.properties ?? {});
  const extra = s.additionalProperties;
  if (props.length === 0 && typeof extra === 'object')
    return `Record<string, ${tsType(extra, indent)}>`;
  if (props.length === 0) return 'Record<string, unknown>';
  const inner = `${indent}  `;
  const lines = props.map(([key, value]) => {
    const optional = s.required?.includes(key) ? '' : '?';
    const name = KEY_RE.test(key) ? key : JSON.stringify(key);
    return `${doc(value.description, inner)}${inner}${name}${optional}: ${tsType(value, inner)};`;
  });
  return `{\n${lines.join('\n')}\n${indent}}`;
}

function primitive(type: string, s: Schema, indent: string): string {
  if (type === 'object') return objectType(s, indent);
  if (type === 'array') return s.items ? `${wrap(tsType(s.items, indent))}[]` : 'unknown[]';
  if (type === 'integer' || type === 'number') return 'number';
  if (type === 'string' || type === 'boolean' || type === 'null') return type;
  return 'unknown';
}

const wrap = (t: string) => (/[|&]/.test(t) && !t.startsWith('{') ? `(${t})` : t);

/** The TypeScript type of a JSON Schema (the subset zod emits for the contracts). */
function tsType(s: Schema, indent = ''): string {
  if (s.$ref) return nameOf(s.$ref.slice(s.$ref.lastIndexOf('/') + 1));
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  const union = s.anyOf ?? s.oneOf;
  if (union) return union.map((u) => wrap(tsType(u, indent))).join(' | ');
  if (s.allOf) return s.allOf.map((u) => wrap(tsType(u, indent))).join(' & ');
  if (Array.isArray(s.type)) return s.type.map((t) => primitive(t, s, indent)).join(' | ');
  if (s.type) return primitive(s.type, s, indent);
  if (s.properties) return objectType(s, indent);
  return 'unknown';
}

/** Every schema the contract modules export with an id, in a registry of their own. */
function contracts(): z.core.$ZodRegistry<{ id: string }> {
  const registry = z.registry<{ id: string }>();
  for (const value of MODULES.flatMap((m) => Object.values(m) as unknown[])) {
    if (!(value instanceof z.ZodType)) continue;
    const id = z.globalRegistry.get(value)?.id;
    if (id) registry.add(value, { id });
  }
  return registry;
}

/**
 * The text of src/shared/contracts/plain-types.ts (before formatting): every contract with an id, as
 * a plain type.
 */
export function emitClientTypes(): string {
  const { schemas } = z.toJSONSchema(contracts(), {
    io: 'output',
    unrepresentable: 'any',
    uri: (id) => `#/${id}`,
  });
  const out = [
    '// Generated from the zod contracts of src/shared/contracts by `npm run contracts:types`;',
    '// do not edit. test/api/openapi-types.test.ts keeps it in step with the schemas.',
    '',
  ];
  for (const id of Object.keys(schemas).sort()) {
    const schema = schemas[id] as Schema;
    out.push(`${doc(schema.description, '')}export type ${nameOf(id)} = ${tsType(schema)};`, '');
  }
  return out.join('\n');
}
