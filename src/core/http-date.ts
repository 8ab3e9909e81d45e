/**
 * The HTTP `Date` header (RFC 9110 IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT") from a time in
 * epoch milliseconds, by integer arithmetic. Why not Node's own (`res.sendDate`, which formats
 * with `Date#toUTCString` and `getMilliseconds`): V8 answers those through ICU's time-zone
 * support, and the first call maps ~0.6 MB of ICU's time-zone data into the process for good; the
 * router's API sends a Date on every answer, so that was in every router's memory
 * (docs/BENCHMARKS.md, issue 14 "Memory"). Formatted once per second, like Node's.
 */
const DAYS = ['Thu', 'Fri', 'Sat', 'Sun', 'Mon', 'Tue', 'Wed'] as const; // 1970-01-01 was a Thursday
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

let cachedSecond = Number.NaN;
let cachedText = '';

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** IMF-fixdate of `ms` (epoch milliseconds, UTC). Years 0-9999. */
export function httpDate(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second === cachedSecond) return cachedText;
  const days = Math.floor(second / 86_400);
  const inDay = second - days * 86_400;
  // Civil date from days since 1970-01-01 (proleptic Gregorian; H. Hinnant's days_from_civil inverse).
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const weekday = DAYS[((days % 7) + 7) % 7]!;
  const time = `${pad2(Math.floor(inDay / 3600))}:${pad2(Math.floor((inDay % 3600) / 60))}:${pad2(inDay % 60)}`;
  cachedText = `${weekday}, ${pad2(day)} ${MONTHS[month - 1]!} ${String(year).padStart(4, '0')} ${time} GMT`;
  cachedSecond = second;
  return cachedText;
}
