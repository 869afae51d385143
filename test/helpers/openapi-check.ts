import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import formatsModule, { type FormatsPlugin } from 'ajv-formats';

// ajv-formats is CommonJS: its plugin is module.exports and module.exports.default alike.
const addFormats: FormatsPlugin =
  (formatsModule as unknown as { default?: FormatsPlugin }).default ??
  (formatsModule as unknown as FormatsPlugin);

/** The parts of an OpenAPI 3.1 document the checker reads. */
export interface OpenApiDoc {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown> };
}
interface Operation {
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
}

/** One response checked against the document: where, and the items its body held. */
export interface Checked {
  status: number;
  /** The parsed body: one JSON value, NDJSON lines, SSE events ({event, data, id?}) or text. */
  items: unknown[];
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
const SEQUENTIAL = new Set(['application/x-ndjson', 'text/event-stream']);

/** Points the document's component references at the copy the validator holds. */
function retarget<T>(schema: T): T {
  return JSON.parse(
    JSON.stringify(schema).replaceAll('"#/components/schemas/', '"openapi#/$defs/'),
  ) as T;
}

/** SSE events of a stream body, `data` parsed as JSON; comments (keep-alives) left out. */
export function parseSse(text: string): { event: string; data: unknown; id?: string }[] {
  const events: { event: string; data: unknown; id?: string }[] = [];
  for (const block of text.split('\n\n')) {
    const lines = block.split('\n').filter((l) => l !== '' && !l.startsWith(':'));
    if (lines.length === 0) continue;
    const field = (name: string) =>
      lines
        .filter((l) => l.startsWith(`${name}:`))
        .map((l) => l.slice(name.length + 1).trimStart());
    const data = field('data').join('\n');
    const [event = 'message'] = field('event');
    const [id] = field('id');
    events.push({ event, data: JSON.parse(data) as unknown, ...(id !== undefined ? { id } : {}) });
  }
  return events;
}

/**
 * Validates real responses against a served OpenAPI 3.1 document with a JSON Schema 2020-12
 * validator, and counts which operations and statuses were seen.
 */
export class OpenApiChecker {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true });
  private readonly compiled = new Map<unknown, ValidateFunction>();
  /** `METHOD /path` to the statuses seen. */
  readonly seen = new Map<string, Set<number>>();

  constructor(private readonly doc: OpenApiDoc) {
    addFormats(this.ajv);
    this.ajv.addSchema({ $id: 'openapi', $defs: retarget(doc.components.schemas) });
  }

  /** Every operation of the document, as `METHOD /path`. */
  operations(): string[] {
    return Object.entries(this.doc.paths).flatMap(([path, item]) =>
      HTTP_METHODS.filter((m) => item[m]).map((m) => `${m.toUpperCase()} ${path}`),
    );
  }

  /** The statuses the document gives `op`. */
  statuses(op: string): number[] {
    return Object.keys(this.operation(op).responses).map(Number);
  }

  private operation(op: string): Operation {
    const [method = '', path = ''] = op.split(' ');
    const found = this.doc.paths[path]?.[method.toLowerCase()];
    if (!found) throw new Error(`${op} is not in the document`);
    return found;
  }

  private validator(schema: unknown): ValidateFunction {
    let fn = this.compiled.get(schema);
    if (!fn) {
      fn = this.ajv.compile(retarget(schema) as object);
      this.compiled.set(schema, fn);
    }
    return fn;
  }

  /** Problems of `value` against the schema `op` documents for `status` and `type`. */
  problems(op: string, status: number, type: string, value: unknown): string[] {
    const content = this.operation(op).responses[String(status)]?.content;
    const media = content?.[type];
    if (!media) return [`${op} documents no ${type} body for ${status}`];
    const validate = this.validator(media.schema);
    if (validate(value)) return [];
    return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
  }

  /** Records `status` for `op`, as seen outside a Response (a WebSocket upgrade). */
  record(op: string, status: number): void {
    if (!this.operation(op).responses[String(status)])
      throw new Error(`${op} does not document ${status}`);
    const statuses = this.seen.get(op) ?? new Set<number>();
    statuses.add(status);
    this.seen.set(op, statuses);
  }

  /**
   * Checks `res` against `op`: its status is documented, its content type is one documented for
   * it, and its body (each NDJSON line, each SSE event's data) is valid. Throws on any problem.
   */
  async check(op: string, res: Response): Promise<Checked> {
    this.record(op, res.status);
    const response = this.operation(op).responses[String(res.status)];
    const text = await res.text();
    if (!response?.content) {
      if (text !== '') throw new Error(`${op} ${res.status}: undocumented body ${text}`);
      return { status: res.status, items: [] };
    }
    const type = (res.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
    if (!response.content[type])
      throw new Error(`${op} ${res.status}: content type "${type}" is not documented`);
    const items = parseBody(type, text);
    const problems = items.flatMap((item, i) =>
      this.problems(op, res.status, type, item).map((p) => `item ${i}: ${p}`),
    );
    if (problems.length > 0)
      throw new Error(
        `${op} ${res.status} does not match the document:\n${problems.join('\n')}\n${text.slice(0, 2000)}`,
      );
    return { status: res.status, items };
  }
}

function parseBody(type: string, text: string): unknown[] {
  if (type === 'text/event-stream') return parseSse(text);
  if (type === 'application/x-ndjson')
    return text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as unknown);
  if (type === 'application/json') return [JSON.parse(text) as unknown];
  return SEQUENTIAL.has(type) ? [] : [text];
}
