/**
 * Docker benchmark: `docker run` to the first ping that answers, on the Loom network across two
 * hosts, against `docker run` on Docker's default bridge network to a container on the same host,
 * same machine, same run (goal: ratio <= 1.3).
 *
 *   npm run build && sudo node dist/bench/docker.js [--rounds 7] [--json FILE] [--trace]
 *
 * `--trace`: the routers log at debug level, and h1's Docker plugin calls are printed at the end,
 * per call path (count, median and max ms inside the router), to say where a `docker run` waits.
 *
 * Setup: a lab (src/lab) with two hosts, a router and a real dockerd (docker.io 20.10) in each
 * (test/helpers/dockerd.ts: the host's netns, its own mount namespace, plugin dir and data root).
 * `docker network create -d loom --ipam-driver loom mynet` on both (and `loomonly`, the same with
 * -o loom.no-gateway-service=true: no second interface on Docker's docker_gwbridge); a target
 * container on each in h2, and one on the default bridge in h1.
 *
 * Method: each round starts, in h1, `docker run -d` of a container whose command pings the target
 * until one answer comes back (ping -c1 -W1 in a loop) and then prints /proc/uptime. The time is
 * (uptime printed inside) - (uptime read just before `docker run`): container creation, network
 * set-up (Loom: IPAM, veth, Join, MAC gossip to h2), start, and the first answered ping. The clock
 * is the kernel's boot clock, read on both sides (10 ms resolution). Loom and bridge alternate,
 * `--rounds` each; the median of each and their ratio are printed. Containers are removed after
 * each round (not timed).
 *
 * Cleanup: one lab prefix per run; dockerds are stopped by PID after removing their containers and
 * networks; the lab removes namespaces, processes and scratch dirs, also on failure and on signals.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Lab } from '../src/lab/index.js';
import { LoomCli } from '../src/demo/loom-cli.js';
import { pollUntil } from '../src/demo/poll.js';
import { IMAGE, TestDockerd, dockerSkipReason } from '../test/helpers/dockerd.js';

interface Options {
  rounds: number;
  json: string | null;
  trace: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { rounds: 7, json: null, trace: argv.includes('--trace') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '--rounds' && v) o.rounds = Math.max(1, Math.min(50, Number(v) || 7));
    else if (a === '--json' && v) o.json = v;
    else continue;
    i++;
  }
  return o;
}

/** h1's Docker plugin calls from its debug log: per path, count, median and max ms in the router. */
function pluginCallTable(log: string): string {
  const byPath = new Map<string, number[]>();
  for (const line of log.split('\n')) {
    if (!line.includes('docker: plugin call')) continue;
    try {
      const entry = JSON.parse(line) as { path?: unknown; ms?: unknown };
      if (typeof entry.path !== 'string' || typeof entry.ms !== 'number') continue;
      byPath.set(entry.path, [...(byPath.get(entry.path) ?? []), entry.ms]);
    } catch {
      // not a JSON line
    }
  }
  const rows = [...byPath.entries()].map(([path, ms]) => {
    const sorted = [...ms].sort((a, b) => a - b);
    return `  ${path.padEnd(44)} ${String(ms.length).padStart(4)} calls  median ${String(median(sorted)).padStart(4)} ms  max ${String(sorted.at(-1)).padStart(4)} ms`;
  });
  return [`Docker plugin calls on h1 (time inside the router):`, ...rows].join('\n');
}

function uptime(): number {
  return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
}

const PING_UNTIL_ANSWER = 'until ping -c 1 -W 1 "$0" >/dev/null 2>&1; do :; done; cat /proc/uptime; exec sleep 600';

/** Seconds from `docker run -d` to the container's first answered ping of `target`. */
async function runToFirstPing(d: TestDockerd, name: string, net: string, target: string): Promise<number> {
  const t0 = uptime();
  await d.docker(['run', '-d', '--net', net, '--name', name, IMAGE, 'sh', '-c', PING_UNTIL_ANSWER, target]);
  const printed = await pollUntil(
    async () => {
      const out = (await d.docker(['logs', name], { allowFailure: true })).stdout.trim();
      return out === '' ? undefined : Number(out.split(' ')[0]);
    },
    { what: `${name}'s first answered ping`, timeoutMs: 60_000, intervalMs: 50 },
  );
  await d.docker(['rm', '-f', name]);
  return printed - t0;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const skip = process.getuid?.() !== 0 ? 'needs root' : dockerSkipReason();
  if (skip) {
    console.log(`bench docker: skipped (${skip})`);
    return;
  }
  const lab = await Lab.create({ hosts: 2 });
  const cli = new LoomCli(lab);
  const [h1, h2] = lab.hosts;
  if (options.trace) process.env['LOOM_LOG_LEVEL'] = 'debug';
  const d1 = new TestDockerd(lab, h1!);
  const d2 = new TestDockerd(lab, h2!);
  try {
    await Promise.all([d1.start(), d2.start()]);
    await Promise.all([d1.importImage(), d2.importImage()]);
    await cli.launch(h1!, { peers: [h2!.address], args: d1.loomArgs });
    await cli.launch(h2!, { peers: [h1!.address], args: d2.loomArgs });
    for (const [d, h] of [[d1, h1!], [d2, h2!]] as const) {
      await pollUntil(async () => ((await d.docker(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', 'mynet'], { allowFailure: true })).code === 0 ? true : undefined), {
        what: `Loom network on ${h.name}`,
        timeoutMs: 60_000,
        intervalMs: 500,
      });
    }
    for (const d of [d1, d2]) await d.docker(['network', 'create', '-d', 'loom', '--ipam-driver', 'loom', '-o', 'loom.no-gateway-service=true', 'loomonly']);
    await d2.docker(['run', '-d', '--net', 'loomonly', '--name', 'target2', IMAGE, 'sleep', '3600']);
    const loomOnlyTarget = (await d2.docker(['inspect', '-f', '{{(index .NetworkSettings.Networks "loomonly").IPAddress}}', 'target2'])).stdout.trim();
    await d2.docker(['run', '-d', '--net', 'mynet', '--name', 'target', IMAGE, 'sleep', '3600']);
    const loomTarget = (await d2.docker(['inspect', '-f', '{{(index .NetworkSettings.Networks "mynet").IPAddress}}', 'target'])).stdout.trim();
    await d1.docker(['run', '-d', '--name', 'btarget', IMAGE, 'sleep', '3600']);
    const bridgeTarget = (await d1.docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'btarget'])).stdout.trim();
    // A user-defined network of Docker's own bridge driver: what any non-default network costs in
    // Docker itself (the embedded DNS resolver and its rules in each container), Loom aside.
    await d1.docker(['network', 'create', '-d', 'bridge', 'ubridge']);
    await d1.docker(['run', '-d', '--net', 'ubridge', '--name', 'utarget', IMAGE, 'sleep', '3600']);
    const userBridgeTarget = (await d1.docker(['inspect', '-f', '{{(index .NetworkSettings.Networks "ubridge").IPAddress}}', 'utarget'])).stdout.trim();
    // One untimed round each: image layers and ARP paths warm.
    await runToFirstPing(d1, 'warm-loom', 'mynet', loomTarget);
    await runToFirstPing(d1, 'warm-bridge', 'bridge', bridgeTarget);

    const loom: number[] = [];
    const loomOnly: number[] = [];
    const bridge: number[] = [];
    const userBridge: number[] = [];
    for (let i = 0; i < options.rounds; i++) {
      const order = i % 2 === 0 ? ['loom', 'only', 'bridge', 'user'] : ['user', 'bridge', 'only', 'loom'];
      for (const which of order) {
        if (which === 'loom') loom.push(await runToFirstPing(d1, `l${i}`, 'mynet', loomTarget));
        else if (which === 'only') loomOnly.push(await runToFirstPing(d1, `o${i}`, 'loomonly', loomOnlyTarget));
        else if (which === 'user') userBridge.push(await runToFirstPing(d1, `u${i}`, 'ubridge', userBridgeTarget));
        else bridge.push(await runToFirstPing(d1, `b${i}`, 'bridge', bridgeTarget));
      }
    }
    const ms = (s: number) => `${(s * 1000).toFixed(0)} ms`;
    const result = {
      rounds: options.rounds,
      loomAcrossHostsMs: loom.map((s) => Math.round(s * 1000)),
      bridgeSameHostMs: bridge.map((s) => Math.round(s * 1000)),
      loomMedianMs: Math.round(median(loom) * 1000),
      bridgeMedianMs: Math.round(median(bridge) * 1000),
      ratio: Number((median(loom) / median(bridge)).toFixed(2)),
      loomNoGatewayServiceMs: loomOnly.map((s) => Math.round(s * 1000)),
      loomNoGatewayServiceMedianMs: Math.round(median(loomOnly) * 1000),
      ratioNoGatewayService: Number((median(loomOnly) / median(bridge)).toFixed(2)),
      userBridgeSameHostMs: userBridge.map((s) => Math.round(s * 1000)),
      userBridgeMedianMs: Math.round(median(userBridge) * 1000),
      ratioToUserBridge: Number((median(loom) / median(userBridge)).toFixed(2)),
      goal: 1.3,
    };
    console.log(`docker run -> first answered ping (median of ${options.rounds}, same run)`);
    console.log(`  Docker default bridge, same host:  ${ms(median(bridge))}   [${result.bridgeSameHostMs.join(', ')}]`);
    console.log(`  Loom network, across two hosts:    ${ms(median(loom))}   [${result.loomAcrossHostsMs.join(', ')}]`);
    console.log(`  Loom, -o loom.no-gateway-service:  ${ms(median(loomOnly))}   [${result.loomNoGatewayServiceMs.join(', ')}]`);
    console.log(`  Docker user-defined bridge network: ${ms(median(userBridge))}   [${result.userBridgeSameHostMs.join(', ')}]`);
    console.log(`  ratio Loom / bridge: ${result.ratio}x (goal <= ${result.goal}x); without Docker's gateway bridge: ${result.ratioNoGatewayService}x; Loom / Docker's user-defined bridge: ${result.ratioToUserBridge}x`);
    if (options.json) writeFileSync(options.json, JSON.stringify(result, null, 2) + '\n');
    if (options.trace) console.log(pluginCallTable(cli.logTail(h1!, 100_000)));
  } finally {
    await Promise.all([d1.stop(), d2.stop()]).catch((err: unknown) => console.error(`bench docker: stopping dockerd: ${String(err)}`));
    await lab.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
