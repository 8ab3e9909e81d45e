/**
 * UTC times as text by integer arithmetic: the HTTP `Date` header (RFC 9110 IMF-fixdate, "Sun, 06
 * Nov 1994 08:49:37 GMT") and ISO 8601 timestamps ("1994-11-06T08:49:37.000Z"). Why not V8's
 * (`Date#toUTCString`, `Date#toISOString`, and Node's own Date header, which uses both them and
 * `getMilliseconds`): V8 computes a Date's fields through ICU's time-zone support, and the first
 * such call maps ~0.6 MB of ICU's time-zone data into the process for good. The router sends a
 * Date on every API answer and stamps every container it starts, so that was in every router's
 * memory (docs/BENCHMARKS.md, issue 14 "Memory"). The HTTP date is formatted once per second,
 * like Node's.
 */
const DAYS = ['Thu', 'Fri', 'Sat', 'Sun', 'Mon', 'Tue', 'Wed'] as const; // 1970-01-01 was a Thursday
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

let cachedSecond = Number.NaN;
let cachedText = '';

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

interface CivilTime {
  year: number;
  month: number;
  day: number;
  weekday: number;
  hours: number;
  minutes: number;
  seconds: number;
}

/** Calendar fields of `second` (epoch seconds, UTC), proleptic Gregorian (H. Hinnant's civil_from_days). */
function civil(second: number): CivilTime {
  const days = Math.floor(second / 86_400);
  const inDay = second - days * 86_400;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const month = mp < 10 ? mp + 3 : mp - 9;
  return {
    year: yoe + era * 400 + (month <= 2 ? 1 : 0),
    month,
    day: doy - Math.floor((153 * mp + 2) / 5) + 1,
    weekday: ((days % 7) + 7) % 7,
    hours: Math.floor(inDay / 3600),
    minutes: Math.floor((inDay % 3600) / 60),
    seconds: inDay % 60,
  };
}

/** IMF-fixdate of `ms` (epoch milliseconds, UTC). Years 0-9999. */
export function httpDate(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second === cachedSecond) return cachedText;
  const t = civil(second);
  cachedText = `${DAYS[t.weekday]!}, ${pad2(t.day)} ${MONTHS[t.month - 1]!} ${String(t.year).padStart(4, '0')} ${pad2(t.hours)}:${pad2(t.minutes)}:${pad2(t.seconds)} GMT`;
  cachedSecond = second;
  return cachedText;
}

/** `new Date(ms).toISOString()` without V8's date fields. Years 0-9999. */
export function isoTimestamp(ms: number): string {
  const second = Math.floor(ms / 1000);
  const t = civil(second);
  const millis = String(Math.floor(ms) - second * 1000).padStart(3, '0');
  return `${String(t.year).padStart(4, '0')}-${pad2(t.month)}-${pad2(t.day)}T${pad2(t.hours)}:${pad2(t.minutes)}:${pad2(t.seconds)}.${millis}Z`;
}
