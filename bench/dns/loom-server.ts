/**
 * Loom's DnsServer alone in its own process, for bench/dns.ts: serves the names of a hosts file
 * (`address name` lines, the file dnsmasq gets) on one UDP endpoint, so the server never shares
 * an event loop with the load generator.
 *
 *   node dist/bench/dns/loom-server.js --hosts FILE --host ADDR --port N --ready FILE [--udp auto|dgram|batched|native] [--timing]
 *        [--slice-us N]
 *
 * Writes `<pid> <udp path in use>` to the --ready FILE once listening; stops on SIGTERM/SIGINT. A local-only store (no
 * router), no upstreams: every benchmark name is in the domain, so nothing is forwarded.
 *
 * Attribution of the tail: every second it prints `gc <count> <total ms> <max ms>` to stderr,
 * the garbage collections of that second (PerformanceObserver 'gc': each a pause of the main
 * thread), so the bench can tell how long the server was paused during a latency round.
 *
 * With --timing (batched path only): every reply's time inside the server, from the kernel's
 * receive timestamp of its query (SO_TIMESTAMPNS) to the recvmmsg that read it ("wait": the
 * wake-up and any queueing in the process) and on to the return of the sendmmsg that sent it
 * ("service"), kept in histograms (bench/dns/histogram.ts). On SIGUSR2 it prints
 * `timing <wait> <service> <total>` (histogram text) to stderr and starts over, so the bench
 * can take one histogram per latency round.
 *
 * With --slice-us N: the main thread asks for an N µs scheduler slice (src/os/sched-slice.ts) before
 * it serves; the ready file then says `<pid> <udp path> slice <µs>`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { systemClock } from '../../src/core/clock.js';
import { LoomError, toLoomError } from '../../src/core/errors.js';
import type { PeerName } from '../../src/core/ids.js';
import { silentLogger } from '../../src/core/logger.js';
import type { MeshView } from '../../src/mesh/types.js';
import { DnsRecordStore } from '../../src/dns/store.js';
import { DnsServer, type UdpPathSetting } from '../../src/dns/server.js';
import { openUdpBatch, watchInsteadOfDgram, DEFAULT_BATCH_CAPACITY, DEFAULT_SLOT_BYTES, type UdpTimingSink } from '../../src/os/udp-batch.js';
import { setThreadSlice } from '../../src/os/sched-slice.js';
import { LatencyHistogram } from './histogram.js';
import { parseHostsFile } from './names.js';

function option(name: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (v === undefined) throw new LoomError('ERR_INVALID_ARGUMENT', `--${name} is required`);
  return v;
}

function reportGc(): void {
  let count = 0;
  let total = 0;
  let max = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      count++;
      total += e.duration;
      max = Math.max(max, e.duration);
    }
  }).observe({ entryTypes: ['gc'] });
  setInterval(() => {
    process.stderr.write(`gc ${count} ${total.toFixed(3)} ${max.toFixed(3)}\n`);
    count = 0;
    total = 0;
    max = 0;
  }, 1000).unref();
}

/** Histograms of every reply's wait and service time; printed and reset on SIGUSR2. */
function timingSink(): UdpTimingSink {
  const wait = new LatencyHistogram();
  const service = new LatencyHistogram();
  const total = new LatencyHistogram();
  process.on('SIGUSR2', () => {
    process.stderr.write(`timing ${wait.toText()} ${service.toText()} ${total.toText()}\n`);
    wait.reset();
    service.reset();
    total.reset();
  });
  return {
    record(waitUs: Float64Array, serviceUs: Float64Array, count: number): void {
      for (let k = 0; k < count; k++) {
        wait.record(waitUs[k]!);
        service.record(serviceUs[k]!);
        total.record(waitUs[k]! + serviceUs[k]!);
      }
    },
  };
}

async function main(): Promise<void> {
  reportGc();
  const port = Number(option('port'));
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new LoomError('ERR_INVALID_ARGUMENT', '--port must be 1..65535');
  const self = '02:00:00:00:00:01' as PeerName;
  const mesh: MeshView = { self, reachablePeers: () => [self], isReachable: (p) => p === self, nicknameOf: () => undefined, onChange: () => () => {} };
  const store = new DnsRecordStore({ mesh, clock: systemClock, logger: silentLogger });
  const udpIndex = process.argv.indexOf('--udp');
  const udpPath = (udpIndex >= 0 ? process.argv[udpIndex + 1] : 'auto') as UdpPathSetting;
  const timing = process.argv.includes('--timing') ? timingSink() : null;
  const components =
    timing === null
      ? { store }
      : { store, openUdpBatch: (socket: Parameters<typeof openUdpBatch>[0]) => openUdpBatch(socket, DEFAULT_BATCH_CAPACITY, DEFAULT_SLOT_BYTES, { timing }), takeOverReading: watchInsteadOfDgram };
  const server = new DnsServer(components, { resolvConfPath: '/nonexistent', udpPath });
  const entries = parseHostsFile(readFileSync(option('hosts'), 'utf8'));
  entries.forEach((e, i) => server.add(e.name, e.address, `c${i}`));
  await server.start({ udp: { host: option('host'), port } });
  const path = server.udpStats().path;
  let slice = '';
  if (process.argv.includes('--slice-us')) {
    const set = await setThreadSlice(Number(option('slice-us')));
    if ('unavailable' in set) throw new LoomError('ERR_UNAVAILABLE', `--slice-us: ${set.unavailable}`);
    slice = ` slice ${set.nowUs}`;
  }
  writeFileSync(option('ready'), `${process.pid} ${path}${slice}\n`);
  process.stderr.write(`loom dns bench server: ${entries.length} records on ${option('host')}:${port}, udp path ${path}\n`);
  const stop = (): void => {
    void server.stop().finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  const e = toLoomError(err);
  process.stderr.write(`error ${e.code}: ${e.message}\n`);
  process.exit(2);
});
