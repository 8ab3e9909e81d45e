/**
 * `loom status --watch`: follows the router's event stream (GET /ui/events, the live page's) and
 * redraws on each snapshot, which the router sends on connect, within a second of a change and
 * every 2 s while anyone listens. On a terminal the screen is cleared and redrawn; otherwise each
 * snapshot is printed after a "--- HH:MM:SS" line, so a pipe or a log gets successive copies.
 * Ctrl-C (SIGINT) or `signal` ends it cleanly; the router going away ends it with ERR_UNAVAILABLE.
 */
import { LoomError, toLoomError } from '../core/errors.js';
import type { Report } from '../client/index.js';
import type { ApiClient } from '../client/index.js';
import { clockTime } from './format-live.js';

const CLEAR_SCREEN = '\u001b[H\u001b[2J';

export interface WatchOptions {
  out: (text: string) => void;
  /** Redraw in place (a terminal) or print one copy after another. */
  tty: boolean;
  /** Ends the watch (tests); SIGINT does too. */
  signal?: AbortSignal;
  now?: () => number;
}

export async function watchReports(client: Pick<ApiClient, 'openStream' | 'address'>, render: (report: Report) => string, options: WatchOptions): Promise<void> {
  const now = options.now ?? Date.now;
  let stopped = false;
  // Set inside the stream's callback (an object, so the check after `await` is not narrowed away).
  const failed: { error: Error | null } = { error: null };
  const stream = client.openStream('/ui/events', (message) => {
    if (message.event !== 'snapshot' || stopped) return;
    try {
      const text = render(JSON.parse(message.data) as Report);
      const stamp = clockTime(now());
      options.out(options.tty ? `${CLEAR_SCREEN}loom status --watch  ${stamp}  (Ctrl-C to stop)\n\n${text}` : `--- ${stamp}\n${text}`);
    } catch (err) {
      failed.error = toLoomError(err);
      stream.close();
    }
  });
  const stop = (): void => {
    stopped = true;
    stream.close();
  };
  process.once('SIGINT', stop);
  options.signal?.addEventListener('abort', stop, { once: true });
  try {
    await stream.done;
  } finally {
    process.off('SIGINT', stop);
    options.signal?.removeEventListener('abort', stop);
  }
  if (failed.error !== null) throw failed.error;
  if (!stopped) throw new LoomError('ERR_UNAVAILABLE', `the router at ${client.address} ended the stream (stopped?)`);
}
