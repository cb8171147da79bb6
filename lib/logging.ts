import stream from 'node:stream';
import type { MessagePort } from 'node:worker_threads';
import { getWorkerContext } from './worker/context.ts';
import { ConsoleHandler, Formatter, Logger, Node, SyslogLevel } from 'streams-logger';
import type { LogRecord } from './protocol/messages.ts';

/** Syslog levels, most severe first: `Level.ERROR < Level.INFO < Level.DEBUG`. */
export const Level = SyslogLevel;
export type Level = SyslogLevel;

export type { LogRecord };

const DEFAULT_LEVEL = SyslogLevel.INFO;

/** The root of socketnaut's logging graph: every proxy's and agent's logger feeds it. */
export const logger = new Logger({ name: 'socketnaut', level: DEFAULT_LEVEL, captureStackTrace: false });

export const formatter = new Formatter<string, string>({
  format: ({ isotime, level, name, threadid, message }) =>
    `${isotime ?? new Date().toISOString()} ${level} ${name ?? ''}[${threadid}]: ${message}\n`,
});

// Levels are chosen on the loggers; the handler lets through whatever reaches it.
export const consoleHandler = new ConsoleHandler<string>({ level: SyslogLevel.DEBUG });

logger.connect(formatter.connect(consoleHandler));

export function createLogger(name: string, level: SyslogLevel = DEFAULT_LEVEL): Logger {
  return new Logger({ name, level, parent: logger, captureStackTrace: false });
}

/** Where the proxy writes the records its workers forward, so they join the main thread's graph. */
class RecordInlet extends Node<LogRecord, LogRecord> {
  constructor() {
    super(new stream.PassThrough({ objectMode: true }));
  }

  push(record: LogRecord): void {
    this._write(record).catch(() => {});
  }
}

let inlet: RecordInlet | undefined;

export function acceptWorkerLogRecord(record: LogRecord): void {
  if (!inlet) {
    inlet = new RecordInlet();
    inlet.connect(logger);
  }
  inlet.push(record);
}

/** In a worker: sends the local graph's records to the proxy instead of the console. */
class PortOutlet extends Node<LogRecord, never> {
  constructor(port: MessagePort) {
    super(
      new stream.Writable({
        objectMode: true,
        write(record: LogRecord, _encoding, callback) {
          port.postMessage({ type: 'log', record });
          callback();
        },
      }),
    );
  }
}

function forwardLogsTo(port: MessagePort): void {
  logger.disconnect(formatter);
  logger.connect(new PortOutlet(port));
}

// Loaded in a socketnaut worker (only once something there logs): records go to the proxy.
const workerContext = getWorkerContext();
if (workerContext) {
  forwardLogsTo(workerContext.port);
  logger.setLevel(workerContext.logLevel);
}
