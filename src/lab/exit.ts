/**
 * Tears live labs down when the process ends unexpectedly. On SIGINT/SIGTERM/SIGHUP the labs get
 * an orderly async teardown (bounded), then the process exits with 128+signal; a second signal
 * exits at once. On 'exit' (normal end, process.exit, uncaught error) only synchronous work is
 * possible, so each lab's `destroySync` runs. Signal listeners exist only while a lab is live, so
 * the default signal behaviour comes back once every lab is gone or kept.
 */
export interface ExitCleanup {
  destroy(): Promise<void>;
  destroySync(): void;
}

const live = new Set<ExitCleanup>();
const SIGNALS: Array<[NodeJS.Signals, number]> = [
  ['SIGINT', 2],
  ['SIGTERM', 15],
  ['SIGHUP', 1],
];
const ASYNC_TEARDOWN_LIMIT_MS = 15_000;
let tearingDown = false;

function onExit(): void {
  for (const lab of [...live]) {
    try {
      lab.destroySync();
    } catch {
      // best effort: the process is ending; cleanupStale catches what is left
    }
  }
}

function onSignal(sig: NodeJS.Signals): void {
  const code = 128 + (SIGNALS.find(([s]) => s === sig)?.[1] ?? 15);
  if (tearingDown) process.exit(code);
  tearingDown = true;
  const limit = new Promise((resolve) => setTimeout(resolve, ASYNC_TEARDOWN_LIMIT_MS).unref());
  void Promise.race([Promise.allSettled([...live].map((lab) => lab.destroy())), limit]).finally(() => process.exit(code));
}

function install(): void {
  process.on('exit', onExit);
  for (const [sig] of SIGNALS) process.on(sig, onSignal);
}

function uninstall(): void {
  process.off('exit', onExit);
  for (const [sig] of SIGNALS) process.off(sig, onSignal);
}

export function registerForExit(lab: ExitCleanup): void {
  if (live.size === 0) install();
  live.add(lab);
}

export function unregisterForExit(lab: ExitCleanup): void {
  if (!live.delete(lab)) return;
  if (live.size === 0 && !tearingDown) uninstall();
}
