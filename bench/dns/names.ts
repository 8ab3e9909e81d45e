/**
 * The name set both servers serve and the query mix dnsperf sends, generated deterministically
 * (seeded), so every run and both servers see exactly the same data.
 *
 * Names: `svc-<i>.<domain>`; every `multiEvery`-th name has 3 addresses (round robin), the
 * rest one. Queries: one A query per name plus `nxdomainShare` of unknown names in the domain
 * (NXDOMAIN from both servers), in a seeded random order.
 */
export interface NameSetOptions {
  names: number;
  domain: string;
  multiEvery: number;
  nxdomainShare: number;
  seed: number;
}

export interface NameSet {
  /** `address name` lines: dnsmasq's addn-hosts format, also read by the Loom bench server. */
  hostsFile: string;
  /** dnsperf's data file: `name A` lines. */
  queryFile: string;
  records: number;
  queries: number;
}

export const DEFAULT_NAME_SET: NameSetOptions = { names: 1000, domain: 'loom.local', multiEvery: 10, nxdomainShare: 0.1, seed: 0x10c0 };

/** xorshift32: small, seeded, good enough to shuffle a query file. */
function seeded(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x1_0000_0000;
  };
}

export function buildNameSet(o: NameSetOptions = DEFAULT_NAME_SET): NameSet {
  const hosts: string[] = [];
  const queries: string[] = [];
  let next = 0;
  for (let i = 0; i < o.names; i++) {
    const name = `svc-${i}.${o.domain}`;
    const count = i % o.multiEvery === 0 ? 3 : 1;
    for (let k = 0; k < count; k++) {
      next++;
      hosts.push(`10.${32 + (next >> 16)}.${(next >> 8) & 0xff}.${next & 0xff} ${name}`);
    }
    queries.push(`${name} A`);
  }
  const missing = Math.round(o.names * o.nxdomainShare);
  for (let i = 0; i < missing; i++) queries.push(`missing-${i}.${o.domain} A`);
  const random = seeded(o.seed);
  for (let i = queries.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = queries[i]!;
    queries[i] = queries[j]!;
    queries[j] = t;
  }
  return { hostsFile: `${hosts.join('\n')}\n`, queryFile: `${queries.join('\n')}\n`, records: hosts.length, queries: queries.length };
}

/** Parses `address name` lines (the hosts file above); blank lines and `#` comments are skipped. */
export function parseHostsFile(text: string): Array<{ address: string; name: string }> {
  const out: Array<{ address: string; name: string }> = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const [address, name] = t.split(/\s+/);
    if (address && name) out.push({ address, name });
  }
  return out;
}
