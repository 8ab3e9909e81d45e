import { writeSync } from 'node:fs';
import { pino, stdSerializers, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { Logger } from '../core/logger.js';

/**
 * The daemon's logger: pino JSON lines to stdout (or `destination`), at `level` (default info;
 * `loom launch --log-level` or LOOM_LOG_LEVEL, read in options.ts). Components take `logger.child({ component: 'mesh' })` and so on.
 * Stdout is a `lossyDestination`: a background daemon's stdout is STATE_DIR/loom.log, and a full
 * or read-only disk must not turn every log call into a thrown ENOSPC (pino's own sync
 * destination throws it to the caller: a gossip handler, a timer, a request).
 */
export function createDaemonLogger(options: { level?: string; destination?: DestinationStream; bindings?: Record<string, unknown> } = {}): Logger & { flush(): void } {
  const level = options.level ?? 'info';
  let base: PinoLogger | null = null;
  const destination =
    options.destination ??
    lossyDestination(1, { onRecovered: (lost, code) => base?.warn({ lost, code }, `${lost} log lines were lost: the log's disk refused them (${code}); see the router's state directory`) });
  base = pino({ level, base: { pid: process.pid, ...options.bindings }, serializers: { err: serializeError } }, destination);
  return wrap(base);
}

/**
 * pino's error serializer, with the error's `name` as its `type` instead of its constructor's
 * name: the daemon bundle is minified without esbuild's keepNames (scripts/build-cli.mjs), so a
 * class's own name there is a minified one; Loom's error classes set `name` (LoomError, CniError).
 */
export function serializeError(err: unknown): unknown {
  const out: unknown = stdSerializers.err(err as Error);
  if (err instanceof Error && typeof err.name === 'string' && err.name !== '' && typeof out === 'object' && out !== null) (out as { type?: string }).type = err.name;
  return out;
}

export interface LossyDestination extends DestinationStream {
  /** Lines dropped since the last one that went through. */
  readonly lost: number;
}

/**
 * A synchronous log destination on `fd` that never throws: a line the file refuses (ENOSPC,
 * EROFS, EIO...) is counted and dropped; after the next line that goes through, `onRecovered`
 * hears how many were lost and the first error's code (once per outage). EAGAIN (a non-blocking
 * pipe) is retried a bounded number of times, then the line counts as lost.
 */
export function lossyDestination(fd: number, options: { onRecovered?: (lost: number, code: string) => void; write?: (fd: number, bytes: Uint8Array) => number } = {}): LossyDestination {
  const write = options.write ?? ((f: number, bytes: Uint8Array) => writeSync(f, bytes));
  let lost = 0;
  let firstCode = '';
  const writeAll = (text: string): void => {
    let rest: Uint8Array = Buffer.from(text);
    for (let attempt = 0; rest.length > 0; attempt++) {
      if (attempt >= 100) throw Object.assign(new Error('the log file takes no more bytes'), { code: 'EAGAIN' });
      try {
        rest = rest.subarray(write(fd, rest));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      }
    }
  };
  return {
    get lost() {
      return lost;
    },
    write(text: string): void {
      try {
        writeAll(text);
      } catch (err) {
        if (lost === 0) firstCode = (err as NodeJS.ErrnoException).code ?? 'error';
        lost++;
        return;
      }
      if (lost === 0) return;
      const n = lost;
      lost = 0;
      options.onRecovered?.(n, firstCode);
    },
  };
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
