/**
 * The logger shape every component takes. The daemon passes a pino logger (src/daemon/log.ts);
 * tests pass `silentLogger` or a recording one. Core stays dependency-free.
 */
export interface Logger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

export interface LogRecord {
  level: 'debug' | 'info' | 'warn' | 'error';
  bindings: Record<string, unknown>;
  obj: object | string;
  msg: string | undefined;
}

/** A logger that keeps what it is told, for tests that assert a reason was logged. */
export function recordingLogger(records: LogRecord[] = [], bindings: Record<string, unknown> = {}): Logger & { records: LogRecord[] } {
  const at =
    (level: LogRecord['level']) =>
    (obj: object | string, msg?: string): void => {
      records.push({ level, bindings, obj, msg });
    };
  return {
    records,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (b) => recordingLogger(records, { ...bindings, ...b }),
  };
}
