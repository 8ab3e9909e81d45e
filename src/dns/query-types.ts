/**
 * Query types counted one by one for metrics (`loom_dns_query_types_total`); any other type
 * counts as "other", so the label's values stay a fixed, small set.
 */
export const COUNTED_QUERY_TYPES = ['A', 'AAAA', 'PTR', 'SRV', 'TXT', 'MX', 'CNAME', 'NS', 'SOA', 'ANY', 'other'] as const;
export type CountedQueryType = (typeof COUNTED_QUERY_TYPES)[number];

/** Index into COUNTED_QUERY_TYPES of a question's numeric type (RFC 1035 and 3596 numbers). */
export function queryTypeIndex(qtype: number): number {
  switch (qtype) {
    case 1: return 0;
    case 28: return 1;
    case 12: return 2;
    case 33: return 3;
    case 16: return 4;
    case 15: return 5;
    case 5: return 6;
    case 2: return 7;
    case 6: return 8;
    case 255: return 9;
    default: return 10;
  }
}

/** Counts per type, as a record over every counted type (zeros included). */
export function queryTypeRecord(counts: readonly number[]): Record<CountedQueryType, number> {
  return Object.fromEntries(COUNTED_QUERY_TYPES.map((t, i) => [t, counts[i] ?? 0])) as Record<CountedQueryType, number>;
}
