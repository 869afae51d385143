import { writeFile } from 'node:fs/promises';
import type * as HyparquetWriter from 'hyparquet-writer';
import type { BatchResultLine, ModelMetadata } from '../client/index.js';
import { CliError } from './cli-error.js';
import { useCompactHeap } from './memory.js';
import type { ResultSink, ResultText } from './output.js';

type ColumnType = 'INT32' | 'DOUBLE' | 'STRING' | 'JSON';

/** One column of the results file and how a result line fills it. */
interface ResultColumn {
  name: string;
  type: ColumnType;
  nullable: boolean;
  value: (line: BatchResultLine) => unknown;
}

// Rows per row group: big enough for good compression, small enough to keep memory flat.
const GROUP_ROWS = 10_000;

async function loadWriter(): Promise<typeof HyparquetWriter> {
  try {
    return await import('hyparquet-writer');
  } catch (err) {
    if ((err as NodeJS.ErrnoException | null)?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new CliError(
      'writing Parquet needs the package hyparquet-writer: npm install hyparquet-writer@0.17.0',
    );
  }
}

function field(line: BatchResultLine, name: string): unknown {
  return (line as Record<string, unknown>)[name] ?? null;
}

function probabilityColumns(
  labels: string[] | undefined,
  first: BatchResultLine[],
): ResultColumn[] {
  const widest = Math.max(
    0,
    ...first.map((l) => (field(l, 'probabilities') as number[] | null)?.length ?? 0),
  );
  const count = labels?.length ?? widest;
  return Array.from({ length: count }, (_, i) => ({
    name: `probability_${labels?.[i] ?? i}`,
    type: 'DOUBLE',
    nullable: true,
    value: (l) => (field(l, 'probabilities') as number[] | null)?.[i] ?? null,
  }));
}

/** The columns of a results file, from the model's task and the first row group's lines. */
function resultColumns(
  model: Pick<ModelMetadata, 'task' | 'labels'>,
  first: BatchResultLine[],
): ResultColumn[] {
  const columns: ResultColumn[] = [
    { name: 'index', type: 'INT32', nullable: false, value: (l) => l.index },
    { name: 'id', type: 'STRING', nullable: true, value: (l) => l.id ?? null },
    { name: 'status', type: 'STRING', nullable: false, value: (l) => l.status },
  ];
  if (model.task === 'classification') {
    columns.push(
      { name: 'prediction', type: 'INT32', nullable: true, value: (l) => field(l, 'prediction') },
      { name: 'label', type: 'STRING', nullable: true, value: (l) => field(l, 'label') },
      { name: 'confidence', type: 'DOUBLE', nullable: true, value: (l) => field(l, 'confidence') },
      ...probabilityColumns(model.labels, first),
    );
  } else if (model.task === 'regression') {
    // A model with several outputs per row predicts a list: kept as JSON.
    const scalar = first.every((l) => typeof field(l, 'prediction') !== 'object');
    const type = scalar ? 'DOUBLE' : 'JSON';
    columns.push({
      name: 'prediction',
      type,
      nullable: true,
      value: (l) => field(l, 'prediction'),
    });
  } else {
    columns.push({
      name: 'outputs',
      type: 'JSON',
      nullable: true,
      value: (l) => field(l, 'outputs'),
    });
  }
  const error = (l: BatchResultLine) => (l.status === 'failed' ? l.error : undefined);
  columns.push(
    { name: 'error_code', type: 'STRING', nullable: true, value: (l) => error(l)?.code ?? null },
    {
      name: 'error_message',
      type: 'STRING',
      nullable: true,
      value: (l) => error(l)?.message ?? null,
    },
  );
  return columns;
}

/**
 * A results sink writing Parquet: one row per result line, in order, a row group of
 * GROUP_ROWS at a time (memory stays flat). Columns: index, id, status, then by task
 * (classification: prediction, label, confidence, probability_<label>...; regression:
 * prediction; raw: outputs as JSON), then error_code and error_message of failed rows.
 */
export async function openParquetSink(
  path: string,
  model: Pick<ModelMetadata, 'task' | 'labels'>,
): Promise<ResultSink> {
  const lib = await loadWriter();
  // Results go to text and back into columns on their way out: a 1M-row download peaked at 193
  // MB with V8's default heap sizing, 131 MB with this (see useCompactHeap).
  useCompactHeap();
  // Fail now, not after the batch ran, when the file cannot be written.
  await writeFile(path, '').catch((err: unknown) => {
    throw new CliError(`cannot write ${path}: ${(err as Error).message}`);
  });
  let pending: BatchResultLine[] = [];
  let columns: ResultColumn[] | undefined;
  let writer: InstanceType<typeof lib.ParquetWriter> | undefined;
  const open = (first: BatchResultLine[]) => {
    columns = resultColumns(model, first);
    const columnData = columns.map(({ name, type, nullable }) => ({
      name,
      type,
      nullable,
      data: [],
    }));
    const schema = lib.schemaFromColumnData({ columnData });
    writer = new lib.ParquetWriter({ writer: lib.fileWriter(path), schema });
    return { columns, writer };
  };
  const flush = async () => {
    const lines = pending;
    pending = [];
    const out = writer && columns ? { columns, writer } : open(lines);
    try {
      if (lines.length > 0) {
        const columnData = out.columns.map(({ name, type, nullable, value }) => ({
          name,
          type,
          nullable,
          data: lines.map((line) => value(line)),
        }));
        await out.writer.write({ columnData, rowGroupSize: lines.length });
      }
    } catch (err) {
      throw new CliError(`cannot write ${path}: ${(err as Error).message}`);
    }
    return out.writer;
  };
  return {
    async write(result: ResultText) {
      pending.push(result.parse());
      if (pending.length >= GROUP_ROWS) await flush();
    },
    async close() {
      const done = await flush();
      try {
        await done.finish();
      } catch (err) {
        throw new CliError(`cannot write ${path}: ${(err as Error).message}`);
      }
    },
  };
}
