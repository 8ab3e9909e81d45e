/**
 * A tiny upstream DNS server for end-to-end tests: run as a script inside a lab host of its own,
 * it answers A questions for names under `example.test` with UPSTREAM_ANSWER (TTL 60) and
 * NXDOMAIN for everything else, over UDP and TCP port 53. Routers reach it over the underlay
 * through their /etc/netns/<ns>/resolv.conf (`useUpstream`). It never forwards anything: traffic
 * stays in the lab.
 *
 * Run: `node [--import tsx] upstream-dns.(ts|js) serve <listen address>`.
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HostRef, Lab, LabProcess } from '../../src/lab/index.js';
import { pollUntil } from '../../src/demo/poll.js';
// The demo's upstream answers the same way; one implementation serves both.
import { UPSTREAM_ANSWER, UPSTREAM_DOMAIN, upstreamReply } from '../../src/demo/upstream-dns.js';

export { UPSTREAM_ANSWER, UPSTREAM_DOMAIN, upstreamReply };
const MAX_TCP_MESSAGE = 65_535;

function serve(address: string): void {
  const udp = createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    const reply = upstreamReply(msg);
    if (reply) udp.send(reply, rinfo.port, rinfo.address);
  });
  udp.bind(53, address);
  const tcp = createServer((socket) => {
    let buffered = Buffer.alloc(0);
    socket.setTimeout(10_000, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length > MAX_TCP_MESSAGE + 2) return socket.destroy();
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const length = buffered.readUInt16BE(0);
        const reply = upstreamReply(buffered.subarray(2, 2 + length));
        buffered = buffered.subarray(2 + length);
        if (!reply) continue;
        const framed = Buffer.alloc(2 + reply.length);
        framed.writeUInt16BE(reply.length, 0);
        reply.copy(framed, 2);
        socket.write(framed);
      }
    });
  });
  tcp.listen(53, address);
}

const here = fileURLToPath(import.meta.url);
const isTs = here.endsWith('.ts');

/**
 * Starts the upstream in `host` (a lab host with no router), waits until it answers, and points
 * each of `routers`' resolv.conf (/etc/netns/<ns>/resolv.conf) at it. Call before launching the
 * routers: `ip netns exec` mounts that file at launch. The lab stops the process on destroy.
 */
export async function useUpstream(lab: Lab, host: HostRef, routers: readonly HostRef[]): Promise<{ address: string; process: LabProcess }> {
  const h = lab.host(host);
  const script = join(dirname(here), `upstream-dns.${isTs ? 'ts' : 'js'}`);
  const args = [...(isTs ? ['--import', 'tsx'] : []), script, 'serve', h.address];
  const process = lab.start(h, globalThis.process.execPath, args, { logFile: join(lab.workDir, 'upstream-dns.log') });
  await pollUntil(
    async () => {
      const r = await lab.exec(h, 'dig', ['+time=1', '+tries=1', '+short', `@${h.address}`, `probe.${UPSTREAM_DOMAIN}`], { allowFailure: true });
      return r.stdout.trim() === UPSTREAM_ANSWER ? true : undefined;
    },
    { what: 'the upstream DNS server to answer', timeoutMs: 15_000, intervalMs: 100 },
  );
  for (const r of routers) lab.setResolvConf(r, `nameserver ${h.address}\n`);
  return { address: h.address, process };
}

if (process.argv[1] === here && process.argv[2] === 'serve') {
  const address = process.argv[3];
  if (!address || !/^\d{1,3}(\.\d{1,3}){3}$/.test(address)) {
    process.stderr.write('usage: upstream-dns serve <IPv4 address>\n');
    process.exit(2);
  }
  serve(address);
}
