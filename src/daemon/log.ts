import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { Logger } from '../core/logger.js';

/**
 * The daemon's logger: pino JSON lines to stdout (or `destination`), at `level` (default info;
 * `loom launch --log-level` or LOOM_LOG_LEVEL, read in options.ts). Components take `logger.child({ component: 'mesh' })` and so on.
 */
export function createDaemonLogger(options: { level?: string; destination?: DestinationStream; bindings?: Record<string, unknown> } = {}): Logger & { flush(): void } {
  const level = options.level ?? 'info';
  const base = pino({ level, base: { pid: process.pid, ...options.bindings } }, options.destination ?? pino.destination({ dest: 1, sync: true }));
  return wrap(base);
}

function wrap(p: PinoLogger): Logger & { flush(): void } {
  const at =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (obj: object | string, msg?: string): void => {
      if (typeof obj === 'string') p[level](obj);
      else p[level](obj, msg);
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (bindings) => wrap(p.child(bindings)),
    flush: () => p.flush(),
  };
}
