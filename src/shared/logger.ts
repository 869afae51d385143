import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

/** The structured JSON logger every module takes as an argument. */
export type Logger = PinoLogger;

/** Options of createLogger. */
export interface LoggerOptions {
  /** pino level; default info. */
  level?: string;
  /** Name of the process role, logged as `service`. */
  service: string;
  /** Where the JSON lines go; default stdout (tests capture them with a stream). */
  destination?: DestinationStream;
}

/** A pino logger writing JSON lines to stdout, with secrets redacted. */
export function createLogger(options: LoggerOptions): Logger {
  const settings = {
    level: options.level ?? 'info',
    base: { service: options.service, pid: process.pid },
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers["x-api-key"]',
        'headers.authorization',
        'headers["x-api-key"]',
        'features',
        'instances',
        'values',
        '*.features',
        '*.instances',
        '*.values',
        'apiKey',
        'token',
      ],
      censor: '[redacted]',
    },
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}
