/**
 * The demo's own upstream DNS server, for the names Loom does not own. It runs alone in a lab host
 * without a router and answers A questions under UPSTREAM_DOMAIN with UPSTREAM_ANSWER, NXDOMAIN
 * for everything else, over UDP port 53. It never forwards: the routers forward to it (through
 * their /etc/netns/<ns>/resolv.conf), never to this machine's resolver, so no query leaves the lab.
 *
 * Run: `node [--import tsx] upstream-dns.(ts|js) serve <IPv4 listen address>`.
 */
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as dnsPacket from 'dns-packet';
import type { HostRef, Lab, LabProcess } from '../lab/index.js';
import { pollUntil } from './poll.js';

export const UPSTREAM_DOMAIN = 'example.test';
export const UPSTREAM_ANSWER = '198.51.100.7';
const IPV4_RE = /^\d{1,3}(\.\d{1,3}){3}$/;

/** The reply to one query, or null for anything that is not a plain query. Never throws. */
export function upstreamReply(raw: Buffer): Buffer | null {
  let query: dnsPacket.Packet;
  try {
    query = dnsPacket.decode(raw);
  } catch {
    return null;
  }
  const question = query.questions?.[0];
  if (query.type !== 'query' || !question) return null;
  const name = question.name.toLowerCase().replace(/\.$/, '');
  const ours = name === UPSTREAM_DOMAIN || name.endsWith(`.${UPSTREAM_DOMAIN}`);
  const answers: dnsPacket.Answer[] = ours && question.type === 'A' ? [{ type: 'A', name: question.name, ttl: 60, class: 'IN', data: UPSTREAM_ANSWER }] : [];
  return dnsPacket.encode({
    type: 'response',
    id: query.id ?? 0,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (ours ? 0 : 3),
    questions: [question],
    answers,
  });
}

function serve(address: string): void {
  const udp = createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    const reply = upstreamReply(msg);
    if (reply) udp.send(reply, rinfo.port, rinfo.address);
  });
  udp.bind(53, address);
}

const here = fileURLToPath(import.meta.url);
const isTs = here.endsWith('.ts');

/**
 * Starts the server in `host` and waits (bounded) until it answers. The lab stops it on destroy.
 * Call before the routers launch: `ip netns exec` mounts their resolv.conf at exec time.
 */
export async function startUpstreamDns(lab: Lab, host: HostRef): Promise<{ address: string; process: LabProcess }> {
  const h = lab.host(host);
  const args = [...(isTs ? ['--import', 'tsx'] : []), here, 'serve', h.address];
  const process = lab.start(h, globalThis.process.execPath, args, { logFile: join(lab.workDir, 'upstream-dns.log') });
  await pollUntil(
    async () => {
      const r = await lab.exec(h, 'dig', ['+time=1', '+tries=1', '+short', `@${h.address}`, `probe.${UPSTREAM_DOMAIN}`], { allowFailure: true, timeoutMs: 5_000 });
      return r.stdout.trim() === UPSTREAM_ANSWER ? true : undefined;
    },
    { what: 'the upstream DNS server to answer', timeoutMs: 15_000, intervalMs: 100 },
  );
  return { address: h.address, process };
}

if (process.argv[1] === here && process.argv[2] === 'serve') {
  const address = process.argv[3];
  if (!address || !IPV4_RE.test(address)) {
    process.stderr.write('usage: upstream-dns serve <IPv4 address>\n');
    process.exit(2);
  }
  serve(address);
}
