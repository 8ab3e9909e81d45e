/**
 * Step 5: UDP between h1 and h3 is cut on the underlay (an nft rule in the underlay namespace).
 * Kernel VXLAN between them stops; the routers' probes notice and h1 sends h3's frames through
 * h2's user-space relay (the sleeve). A ping from box1 (h1) to box3 (h3) runs across the switch,
 * then pings must all pass by the relay. Then UDP comes back and so does the fast path.
 */
import { LoomError } from '../core/errors.js';
import { indent, showLoom, type DemoStep } from './context.js';
import { pingOnce, placedContainers, waitForPaths } from './steps-containers.js';

/** The background ping across the switch: every 200 ms for 8 s. */
const SWITCH_PING_ARGS = ['-i', '0.2', '-c', '40', '-W', '1'];
const FASTDP_RETURN_MS = 30_000;

export const blockUdp: DemoStep = {
  title: 'Block UDP between h1 and h3 on the underlay: h1 reaches h3 through h2 (the sleeve relay)',
  async run(ctx) {
    const { lab, cli, say, routers } = ctx;
    const [h1, h2, h3] = routers as [typeof routers[0], typeof routers[0], typeof routers[0]];
    const placed = await placedContainers(ctx);
    const from = placed.find((p) => p.name === 'box1');
    const to = placed.find((p) => p.name === 'box3');
    if (!from || !to) throw new LoomError('ERR_NOT_FOUND', 'box1 (h1) and box3 (h3) must be running');
    const viaName = ctx.peerNames.get(h2.name) ?? null;

    say(`  ${h1.name}$ loom exec box1 -- ping ${SWITCH_PING_ARGS.join(' ')} ${to.ip}     # runs across the switch`);
    const background = cli.run(h1, ['exec', from.name, '--', 'ping', ...SWITCH_PING_ARGS, to.ip], { allowFailure: true, timeoutMs: 40_000 });
    const block = await lab.blockUdp(h1, h3);
    const blockedAt = Date.now();
    say(`  underlay$ nft: drop UDP between ${h1.address} (h1) and ${h3.address} (h3)`);
    try {
      await waitForPaths(ctx, 'h1 and h3 to relay through h2', (h, peerHost, p) => {
        const cut = (h === h1 && peerHost === h3.name) || (h === h3 && peerHost === h1.name);
        return cut ? p.path === 'sleeve' && p.via === viaName : p.path === 'fastdp';
      });
      ctx.result.relay.switchMs = Date.now() - blockedAt;
      ctx.result.relay.via = viaName;
      ctx.result.relay.viaHost = h2.name;
      say(`  h1 -> h3: sleeve via h2 (${viaName}), ${((Date.now() - blockedAt) / 1000).toFixed(1)} s after the block`);
      await showLoom(ctx, h1, ['status', 'connections']);
      const during = await background;
      const summary = during.stdout.split('\n').find((l) => l.includes('packets transmitted')) ?? `(ping exit ${during.code})`;
      say(`  the ping that ran across the switch: ${summary.trim()}`);
      const rtts: Array<number | null> = [];
      for (let i = 0; i < 5; i++) rtts.push(await pingOnce(ctx, from, to.ip));
      ctx.result.relay.pingsTotal = rtts.length;
      ctx.result.relay.pingsOk = rtts.filter((r) => r !== null).length;
      say(`  box1 -> box3 by the relay: ${ctx.result.relay.pingsOk}/${rtts.length} pings ok (${rtts.map((r) => (r === null ? 'lost' : `${r} ms`)).join(', ')})`);
      if (ctx.result.relay.pingsOk !== rtts.length) throw new LoomError('ERR_INTERNAL', 'pings through the relay were lost');
    } finally {
      await lab.unblock(block);
      say('  underlay$ nft: unblock');
    }
    const unblockedAt = Date.now();
    try {
      await waitForPaths(ctx, 'every path back on fastdp', (_h, _peer, p) => p.path === 'fastdp', FASTDP_RETURN_MS);
      say(`  h1 -> h3: fastdp again, ${((Date.now() - unblockedAt) / 1000).toFixed(1)} s after the unblock`);
    } catch (err) {
      // The way back is not what this step proves; say so rather than fail the demo.
      say(`  h1 -> h3: not back on fastdp within ${FASTDP_RETURN_MS / 1000} s (${err instanceof Error ? err.message : String(err)})`);
      say(indent(await cli.status(h1, 'connections')));
    }
  },
};
