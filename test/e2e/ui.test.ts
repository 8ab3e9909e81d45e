/**
 * The live page (issue 13) in a real browser: Debian's headless Chromium driven by playwright-core,
 * run inside lab host h1's network namespace (the executable is a wrapper that `ip netns exec`s
 * /usr/bin/chromium, so the browser reaches h1's status listener at 127.0.0.1:6784 and nothing is
 * added to the root namespace). Three hosts chained h2 -> h1, h3 -> h2 (discovery completes the
 * mesh). The page must show three reachable peers and three established links; with UDP between
 * h1 and h3 blocked, the h1-h3 link must turn to the relay; with h3's router killed, two peers.
 * Each state is waited for in the page itself (the stream pushes it), with generous deadlines;
 * the times are printed. Screenshots go to a per-run temp dir (printed).
 * Needs root, nft and /usr/bin/chromium (bash scripts/install.sh); skips otherwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { labSkipReason, withLab } from '../helpers/lab.js';
import type { LabHost } from '../../src/lab/index.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = labSkipReason() ?? (existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (bash scripts/install.sh)`);

/** How long the page may take to show a change the stream pushes (the limit asserted is lower; this only bounds the wait). */
const WAIT_MS = 20_000;

const pairKey = (a: string, b: string): string => (a < b ? `${a}|${b}` : `${b}|${a}`);

async function waitInPage(page: Page, what: string, predicate: string, arg: unknown): Promise<number> {
  const started = Date.now();
  try {
    // eslint-disable-next-line @typescript-eslint/no-implied-eval -- a predicate run in the page, not here
    await page.waitForFunction(new Function('arg', predicate) as (arg: unknown) => boolean, arg, { timeout: WAIT_MS, polling: 100 });
  } catch (err) {
    throw new Error(`the page did not show ${what} within ${WAIT_MS} ms: ${(err as Error).message.split('\n')[0] ?? ''}`);
  }
  return Date.now() - started;
}

const REACHABLE_PEERS = `return document.querySelectorAll('#graph [data-peer][data-reachable="true"]').length === arg;`;
const ESTABLISHED_LINKS = `return document.querySelectorAll('#graph [data-link][data-established="true"]').length === arg;`;
const LINK_RELAYED = `const l = document.querySelector('#graph [data-link="' + CSS.escape(arg) + '"]'); return l !== null && (l.dataset.path === 'relay' || l.dataset.path === 'relay-hop');`;
const EVENT_SHOWN = `return [...document.querySelectorAll('#events li')].some((li) => li.dataset.kind === arg.kind && li.textContent.includes(arg.text));`;

test('the live page shows the mesh, a killed router and a path switching to the relay', { skip, timeout: 120_000 }, (t) =>
  withLab(t, { hosts: 3, subnet: '192.168.97.0/24' }, async (lab, cli) => {
    const [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
    const shots = mkdtempSync(join(tmpdir(), 'loom-ui-'));
    t.diagnostic(`screenshots: ${shots}`);
    const wrapper = join(lab.workDir, 'chromium-in-h1');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${h1.netns} ${CHROMIUM} "$@"\n`);
    chmodSync(wrapper, 0o755);
    // The browser starts while the routers do (it only needs h1's namespace); the routers start
    // together too (h2 and h3 dial until their peer answers).
    const started = Date.now();
    const launching = chromium.launch({ executablePath: wrapper, timeout: 30_000 });
    let browser: Browser | null = null;
    try {
      const [r1, , r3] = await Promise.all([cli.launch(h1), cli.launch(h2, { peers: [h1.address] }), cli.launch(h3, { peers: [h2.address] })]);
      const n1 = r1.name;
      browser = await launching;
      t.diagnostic(`routers and browser started in ${Date.now() - started} ms`);
      const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
      const pageErrors: string[] = [];
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto('http://127.0.0.1:6784/ui', { timeout: 15_000 });

      const meshMs = await waitInPage(page, 'three reachable peers', REACHABLE_PEERS, 3);
      await waitInPage(page, 'three established links', ESTABLISHED_LINKS, 3);
      t.diagnostic(`three peers and three links shown ${meshMs} ms after the page opened`);
      assert.match((await page.locator('#summary').textContent()) ?? '', /^3 peers reachable/);
      // Keyboard: the first Tab stops in the graph; Enter shows the peer or link in the details.
      await page.locator('#graph [tabindex="0"]').first().focus();
      await page.keyboard.press('Enter');
      assert.notEqual(await page.locator('#details h3').count(), 0, 'Enter on a focused graph element shows its details');
      await page.screenshot({ path: join(shots, '1-three-peers.png'), fullPage: true });

      const block = await lab.blockUdp(h1, h3);
      const relayMs = await waitInPage(page, 'the h1-h3 link on the relay', LINK_RELAYED, pairKey(n1, r3.name));
      await waitInPage(page, 'a path-changed event for h3', EVENT_SHOWN, { kind: 'path-changed', text: 'data path to h3' });
      t.diagnostic(`h1-h3 shown on the relay ${relayMs} ms after UDP between them was blocked`);
      await page.screenshot({ path: join(shots, '2-h1-h3-relayed.png'), fullPage: true });
      await lab.unblock(block);

      process.kill(r3.pid, 'SIGKILL');
      const killedMs = await waitInPage(page, 'two reachable peers', REACHABLE_PEERS, 2);
      t.diagnostic(`two peers shown ${killedMs} ms after h3's router was killed`);
      await waitInPage(page, 'the connection to h3 ending', EVENT_SHOWN, { kind: 'connection-down', text: 'h3' });
      await page.emulateMedia({ colorScheme: 'dark' });
      await page.screenshot({ path: join(shots, '3-h3-killed-dark.png'), fullPage: true });
      assert.deepEqual(pageErrors, [], 'the page threw');
      // Within a few seconds (the deadlines above only bound the wait).
      assert.ok(relayMs < 10_000, `relay shown after ${relayMs} ms`);
      assert.ok(killedMs < 10_000, `two peers shown after ${killedMs} ms`);
    } finally {
      await (browser ?? (await launching.catch(() => null)))?.close();
    }
  }),
);
