import { InferqError, type ErrorDetail } from '../client/index.js';

/** An error whose message is meant for the user as it is: printed without a stack trace. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

function detailText(detail: ErrorDetail): string {
  const where = detail.line !== undefined ? `line ${detail.line}` : detail.path;
  return where ? `${where}: ${detail.message}` : detail.message;
}

/** The message of an error answer, with its first details. */
export function serverMessage(err: InferqError): string {
  const details = (err.details ?? []).slice(0, 3).map(detailText);
  const head = err.message.replace(/\.$/, '');
  const extra = details.filter((d) => !head.includes(d));
  const retry = err.retryAfter !== undefined ? `; retry in ${err.retryAfter} s` : '';
  return `${head}${extra.length > 0 ? ` (${extra.join('; ')})` : ''} [${err.code}]${retry}`;
}

function unreachable(err: InferqError, url: string): string {
  const hint = `cannot reach the inferq server at ${url} (is it running? start it with \`npm start\`)`;
  // fetch wraps the socket error; "connection refused" needs no more words, others (DNS, a
  // dropped connection) are worth naming.
  const cause = (err.cause as { cause?: NodeJS.ErrnoException } | undefined)?.cause;
  if (!cause || cause.code === 'ECONNREFUSED') return hint;
  return `${hint}: ${cause.message}`;
}

/** One line that tells the user what went wrong, for any error a command can throw. */
export function describeError(err: unknown, url: string): string {
  if (err instanceof CliError) return err.message;
  if (err instanceof InferqError) {
    if (err.unreachable) return unreachable(err, url);
    if (err.status === 0) return err.message;
    return serverMessage(err);
  }
  return err instanceof Error ? err.message : String(err);
}
