/**
 * Measures one built path: ping RTT (median of many pings), then single-stream iperf3 runs with
 * the CPU of the path's daemons and of the whole machine taken from /proc around each run, and
 * the IPv4 fragments the underlay bridge saw meanwhile (the lab's nft counter).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoomError } from '../../src/core/errors.js';
import { machineBusyPct, median, parseIperfJson, parsePidStat, parsePing, parseProcStat, ticksToCorePct, type MachineTicks } from './parse.js';
import type { BenchContext } from './context.js';
import type { Measurement, PathSession, RunSample } from './types.js';

export interface MeasureOptions {
  /** iperf3 -t */
  seconds: number;
  /** iperf3 runs per path; the table shows medians. */
  runs: number;
  pingCount: number;
  pingIntervalSeconds: number;
  /** sysconf(_SC_CLK_TCK), the unit of /proc/PID/stat times. */
  clockTicksPerSecond: number;
  cores: number;
}

const IPERF_PORT = '5201';
const IPERF_RETRIES = 1;

/** iperf3's server refused this test because it had not finished with the previous one. */
function isServerNotReady(err: unknown): boolean {
  return err instanceof LoomError && err.code === 'ERR_PROTOCOL' && /server is busy|unable to connect to server|connection reset/i.test(err.message);
}

function readFileOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

interface Snapshot {
  atMs: number;
  machine: MachineTicks;
  pidTicks: number[];
}

function snapshot(pids: readonly number[]): Snapshot {
  const pidTicks = pids.map((pid) => {
    try {
      return parsePidStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch (err) {
      throw new LoomError('ERR_UNAVAILABLE', `daemon pid ${pid} is gone during the measurement`, { cause: err });
    }
  });
  return { atMs: performance.now(), machine: parseProcStat(readFileSync('/proc/stat', 'utf8')), pidTicks };
}

export async function measurePath(ctx: BenchContext, session: PathSession, options: MeasureOptions): Promise<Measurement> {
  const { clientNs, serverNs, serverIp } = session;
  const server = ctx.start(serverNs, 'iperf3', ['-s', '-B', serverIp, '-p', IPERF_PORT], { logName: 'iperf3-server.log' });
  try {
    await ctx.waitFor(
      'iperf3 server to listen',
      async () => (await ctx.exec(serverNs, 'ss', ['-Hltn', 'sport', '=', `:${IPERF_PORT}`], { allowFailure: true })).stdout.trim() !== '',
      5000,
      50,
    );
    await ctx.runTracked(clientNs, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', serverIp], { logName: 'ping-warmup.txt', timeoutMs: 5000 });
    // Counted from here to the end of the last run: the row's own traffic (pings, iperf3, the
    // daemons' keep-alives), dropped fragments included.
    const countsBefore = await ctx.lab.underlayCounts();
    const pingOut = await ctx.runTracked(
      clientNs,
      'ping',
      ['-c', String(options.pingCount), '-i', String(options.pingIntervalSeconds), '-W', '1', serverIp],
      { logName: 'ping.txt', timeoutMs: 5000 + options.pingCount * (options.pingIntervalSeconds * 1000 + 50) },
    );
    const ping = parsePing(pingOut.output);
    if (ping.rttsMs.length === 0) throw new LoomError('ERR_TIMEOUT', `no ping replies from ${serverIp}`);

    const runs: RunSample[] = [];
    for (let r = 0; r < options.runs; r++) {
      let attempt = 0;
      let before: Snapshot;
      let after: Snapshot;
      let result: ReturnType<typeof parseIperfJson>;
      for (;;) {
        before = snapshot(session.pids);
        // The JSON goes to its own file: iperf3 may print warnings on stderr.
        const jsonFile = join(ctx.workDir, `iperf3-run${r + 1}-${attempt + 1}.json`);
        await ctx.runTracked(clientNs, 'iperf3', ['-c', serverIp, '-p', IPERF_PORT, '-t', String(options.seconds), '-J', '--logfile', jsonFile], {
          logName: `iperf3-run${r + 1}-${attempt + 1}.log`,
          timeoutMs: (options.seconds + 15) * 1000,
        });
        after = snapshot(session.pids);
        try {
          result = parseIperfJson(readFileOr(jsonFile));
          break;
        } catch (err) {
          // On a loaded machine the server may still be closing the previous test; one retry.
          if (attempt >= IPERF_RETRIES || !isServerNotReady(err)) throw err;
          attempt++;
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
      }
      const seconds = (after.atMs - before.atMs) / 1000;
      const daemonTicks = after.pidTicks.reduce((sum, t, i) => sum + (t - before.pidTicks[i]!), 0);
      runs.push({
        mbps: result.mbps,
        retransmits: result.retransmits,
        daemonCpuPct: session.pids.length === 0 ? null : ticksToCorePct(daemonTicks, seconds, options.clockTicksPerSecond),
        machineBusyPct: machineBusyPct(before.machine, after.machine, options.cores),
      });
    }
    const countsAfter = await ctx.lab.underlayCounts();
    return {
      mtu: session.mtu,
      runs,
      rttMedianMs: median(ping.rttsMs),
      rttSamples: ping.rttsMs.length,
      pingLossPct: ping.lossPct,
      underlayFragments: countsAfter.fragments - countsBefore.fragments,
      underlayPackets: countsAfter.packets - countsBefore.packets,
    };
  } finally {
    await ctx.stop(server, 1000);
  }
}
