// A node:test reporter beside the spec reporter (scripts/run-tests.mjs): writes one JSON line per
// failed test (name, file, nesting, first line of its error) so the run can end with a list of
// every failure and its first error line, the part of a CI log that survives.
export default async function* failuresReporter(source) {
  for await (const event of source) {
    if (event.type !== 'test:fail') continue;
    const data = event.data;
    const error = data.details?.error;
    // A failing test body's error is wrapped: the test runner's error carries the thrown one as cause.
    const cause = error?.cause ?? error;
    const message = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause ?? error?.message ?? 'failed');
    const lines = message.split('\n').filter((l) => l.trim() !== '');
    // fast-check's first line says only "Property failed after N tests": keep its seed line too,
    // so the failure can be replayed from the log alone.
    const seed = lines.find((l) => /\bseed\b/.test(l));
    const first = [lines[0] ?? message, ...(seed !== undefined && seed !== lines[0] ? [seed.trim()] : [])].join(' ');
    yield `${JSON.stringify({ name: data.name, file: data.file ?? null, nesting: data.nesting, error: first.slice(0, 600) })}\n`;
  }
}
