import { LoomError } from '../core/errors.js';

export interface PollOptions {
  /** What we wait for, for the timeout message. */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
}

/**
 * Calls `check` until it returns a value other than undefined, at most every `intervalMs`, for
 * at most `timeoutMs` (and at most timeoutMs/intervalMs + 1 attempts). Errors thrown by `check`
 * count as "not yet"; the last one is kept as the cause of the ERR_TIMEOUT.
 */
export async function pollUntil<T>(check: () => Promise<T | undefined>, options: PollOptions): Promise<T> {
  const interval = options.intervalMs ?? 250;
  const deadline = Date.now() + options.timeoutMs;
  const maxAttempts = Math.ceil(options.timeoutMs / interval) + 1;
  let lastError: unknown;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
  throw new LoomError('ERR_TIMEOUT', `timed out after ${options.timeoutMs} ms waiting for ${options.what}`, { cause: lastError });
}

/** `promise`'s value, or ERR_TIMEOUT after `timeoutMs` (the promise itself is not cancelled). */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new LoomError('ERR_TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}
