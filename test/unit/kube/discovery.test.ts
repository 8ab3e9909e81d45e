/**
 * Peer discovery against a Kubernetes API server of our own on loopback (test/helpers/fake-kube-api.ts):
 * nodes added and removed become router.connect/forget calls; the watch resumes from the last
 * resourceVersion (an event's or a bookmark's) after it ends or drops; 410 Gone makes it list again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../../src/core/clock.js';
import { isLoomError } from '../../../src/core/errors.js';
import type { PeerName } from '../../../src/core/ids.js';
import { silentLogger } from '../../../src/core/logger.js';
import { KubeClient } from '../../../src/kube/client.js';
import { parseKubeOptions } from '../../../src/kube/launch-options.js';
import { KubeSubsystem, type KubeReport } from '../../../src/kube/subsystem.js';
import { FakeKubeApi } from '../../helpers/fake-kube-api.js';

const SELF = '02:00:00:00:00:01' as PeerName;

async function until(cond: () => boolean, what: string, maxMs = 5_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A router that records what it is told to dial and forget. */
class RecordingRouter {
  readonly targets = new Set<string>();
  readonly calls: string[] = [];
  readonly mesh = { self: SELF, reachablePeers: () => [SELF], isReachable: (p: PeerName) => p === SELF, nicknameOf: () => undefined, onChange: () => () => {} };
  connect(addresses: string[]): void {
    this.calls.push(`connect ${addresses.join(',')}`);
    for (const a of addresses) this.targets.add(a);
  }
  forget(addresses: string[]): void {
    this.calls.push(`forget ${addresses.join(',')}`);
    for (const a of addresses) this.targets.delete(a);
  }
  sorted(): string[] {
    return [...this.targets].sort();
  }
}

async function withDiscovery(
  setup: (api: FakeKubeApi) => void,
  body: (ctx: { api: FakeKubeApi; router: RecordingRouter; kube: KubeSubsystem; report: () => KubeReport }) => Promise<void>,
  options: { watchTimeoutSeconds?: number; tokenFile?: string; extraArgs?: Record<string, string> } = {},
): Promise<void> {
  const api = new FakeKubeApi();
  setup(api);
  const url = await api.listen();
  const router = new RecordingRouter();
  const config = parseKubeOptions({ kubePeers: true, kubeApi: url, kubeNodeName: 'node-1', kubeReclaim: false, ...(options.tokenFile ? { kubeTokenFile: options.tokenFile } : {}) }, {})!;
  const kube = new KubeSubsystem({ router, clock: systemClock, logger: silentLogger }, { config, port: 6783, watchTimeoutSeconds: options.watchTimeoutSeconds ?? 60 });
  try {
    await kube.start();
    await body({ api, router, kube, report: () => kube.report() });
  } finally {
    await kube.stop();
    await api.close();
  }
}

test('nodes become peers: every other node InternalIP on the mesh port; added and deleted nodes are connected and forgotten', async () => {
  await withDiscovery(
    (api) => {
      api.addNode('node-1', '10.1.0.1');
      api.addNode('node-2', '10.1.0.2', '10.244.1.0/24');
      api.addNode('node-3', '10.1.0.3');
    },
    async ({ api, router, report }) => {
      await until(() => router.targets.size === 2, 'the listed nodes');
      assert.deepEqual(router.sorted(), ['10.1.0.2:6783', '10.1.0.3:6783'], 'our own node is not a peer');
      await until(() => api.openWatches === 1, 'the watch');
      const watch = api.watchRequests[0]!;
      assert.equal(watch.resourceVersion, report().watcher.resourceVersion, 'the watch starts at the list resourceVersion');
      assert.equal(watch.allowWatchBookmarks, true);
      assert.equal(watch.timeoutSeconds, 60);

      api.addNode('node-4', '10.1.0.4');
      await until(() => router.targets.has('10.1.0.4:6783'), 'node-4 connected');
      api.deleteNode('node-2');
      await until(() => !router.targets.has('10.1.0.2:6783'), 'node-2 forgotten');
      assert.deepEqual(router.calls, ['connect 10.1.0.2:6783,10.1.0.3:6783', 'connect 10.1.0.4:6783', 'forget 10.1.0.2:6783']);

      // A node with no InternalIP yet gives no peer, and one that changes address moves.
      api.addNode('node-5', undefined);
      api.addNode('node-3', '10.1.0.33');
      await until(() => router.targets.has('10.1.0.33:6783'), 'node-3 at its new address');
      assert.deepEqual(router.sorted(), ['10.1.0.33:6783', '10.1.0.4:6783']);
      api.addNode('node-5', '10.1.0.5');
      await until(() => router.targets.has('10.1.0.5:6783'), 'node-5 once it has an address');
      assert.equal(api.lists, 1, 'all of that through one watch, no relist');
      assert.deepEqual(report().targets, ['10.1.0.33:6783', '10.1.0.4:6783', '10.1.0.5:6783']);
    },
  );
});

test('a dropped watch resumes from the last bookmark: the events missed meanwhile arrive, nothing is listed again', async () => {
  await withDiscovery(
    (api) => {
      api.addNode('node-1', '10.1.0.1');
      api.addNode('node-2', '10.1.0.2');
    },
    async ({ api, router, report }) => {
      await until(() => api.openWatches === 1 && router.targets.size === 1, 'the first watch');
      api.bookmark();
      const bookmarked = api.resourceVersion;
      await until(() => report().watcher.resourceVersion === bookmarked, 'the bookmark seen');
      api.dropWatches();
      api.addNode('node-3', '10.1.0.3'); // while no watch is open
      await until(() => router.targets.has('10.1.0.3:6783'), 'the event made while disconnected');
      assert.equal(api.watchRequests.length, 2);
      assert.equal(api.watchRequests[1]!.resourceVersion, bookmarked, 're-watched from the bookmark, not the list');
      assert.equal(api.lists, 1);
      assert.ok(report().watcher.watchFailures >= 1, 'the drop counts as a failure');
    },
  );
});

test('a watch the server ends (timeoutSeconds) is resumed at once from the last event', async () => {
  await withDiscovery(
    (api) => api.addNode('node-2', '10.1.0.2'),
    async ({ api, router }) => {
      await until(() => api.openWatches === 1, 'the first watch');
      api.addNode('node-3', '10.1.0.3');
      await until(() => router.targets.size === 2, 'node-3');
      const rvAfterNode3 = api.resourceVersion;
      await until(() => api.watchRequests.length >= 2, 'the second watch, after the first timed out', 4_000);
      assert.equal(api.watchRequests[1]!.resourceVersion, rvAfterNode3);
      assert.equal(api.lists, 1);
    },
    { watchTimeoutSeconds: 1 },
  );
});

for (const mode of ['status', 'event'] as const) {
  test(`410 Gone (${mode === 'status' ? 'HTTP status' : 'ERROR event in the stream'}) makes it list again; the new list replaces the old set`, async () => {
    await withDiscovery(
      (api) => {
        api.goneMode = mode;
        api.addNode('node-1', '10.1.0.1');
        api.addNode('node-2', '10.1.0.2');
        api.addNode('node-3', '10.1.0.3');
      },
      async ({ api, router, report }) => {
        await until(() => api.openWatches === 1 && router.targets.size === 2, 'the first watch');
        api.dropWatches();
        api.deleteNode('node-3');
        api.addNode('node-4', '10.1.0.4');
        api.compact(); // the events above are no longer in the history
        await until(() => api.lists === 2, 'a second list');
        await until(() => router.targets.has('10.1.0.4:6783') && !router.targets.has('10.1.0.3:6783'), 'the set after the relist');
        assert.deepEqual(router.sorted(), ['10.1.0.2:6783', '10.1.0.4:6783']);
        assert.equal(report().watcher.relists, 1);
        await until(() => api.openWatches === 1, 'watching again');
        assert.equal(api.watchRequests.at(-1)!.resourceVersion, api.resourceVersion, 'watching from the new list');
      },
    );
  });
}

test('an API that refuses us (401) is retried with backoff; the token file is read again on each request', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-kube-token-'));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'stale\n');
  try {
    await withDiscovery(
      (api) => {
        api.token = 'fresh';
        api.addNode('node-2', '10.1.0.2');
      },
      async ({ router, report }) => {
        await until(() => report().watcher.lastError !== null, 'a failed list');
        assert.match(report().watcher.lastError!, /401/);
        assert.equal(report().watcher.synced, false);
        assert.equal(router.targets.size, 0);
        writeFileSync(tokenFile, 'fresh\n'); // the kubelet rotated the projected token
        await until(() => router.targets.size === 1, 'peers once the token is right', 8_000);
        assert.equal(report().watcher.synced, true);
      },
      { tokenFile },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a watch that goes silent (half-open connection) fails with ERR_TIMEOUT, which the watcher treats as a drop; closing the client ends requests in flight', async () => {
  const connections: Socket[] = [];
  const silent = net.createServer((socket) => connections.push(socket)); // accepts, never answers
  await new Promise<void>((r) => silent.listen({ host: '127.0.0.1', port: 0 }, r));
  const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  const client = new KubeClient({ apiUrl: url, watchIdleTimeoutMs: 200, requestTimeoutMs: 60_000 });
  try {
    const started = Date.now();
    await assert.rejects(client.watch('/api/v1/nodes?watch=1', () => {}, new AbortController().signal), (e) => isLoomError(e, 'ERR_TIMEOUT'));
    assert.ok(Date.now() - started < 5_000);
    const pending = client.request('GET', '/api/v1/nodes');
    await new Promise((r) => setTimeout(r, 50));
    client.close();
    await assert.rejects(pending, (e) => isLoomError(e, 'ERR_UNAVAILABLE'));
    await assert.rejects(client.request('GET', '/api/v1/nodes'), (e) => isLoomError(e, 'ERR_UNAVAILABLE'));
  } finally {
    client.close();
    for (const c of connections) c.destroy();
    await new Promise((r) => silent.close(r));
  }
});
