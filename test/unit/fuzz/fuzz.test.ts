/**
 * The fuzz targets of test/fuzz (issue 12) inside `npm test`: each for a couple of thousand
 * cases with a fixed seed (a failure prints fast-check's report; rerun longer with
 * `npm run fuzz -- --target NAME --seed S`), and checks that the target list still covers every
 * parser family of the issue, every API route with a request body, and every Docker driver path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { API_ROUTE_TABLES } from '../../../src/client/index.js';
import type { RouteContract } from '../../../src/api/contract.js';
import { runTarget } from '../../fuzz/harness.js';
import { apiRoutes, DOCKER_PLUGIN_PATHS, FUZZ_TARGETS, PARSER_FAMILIES } from '../../fuzz/targets.js';

const CASES = Number(process.env['LOOM_FUZZ_CASES'] ?? 2000);
const SEED = Number(process.env['LOOM_FUZZ_SEED'] ?? 20261207);

for (const target of FUZZ_TARGETS) {
  test(`fuzz ${target.name}: ${CASES} cases, no crash, hang or unreasoned rejection`, async () => {
    const stats = await runTarget(target, { cases: CASES, seed: SEED });
    assert.equal(stats.failure, null, stats.failure ?? '');
    assert.equal(stats.cases, CASES);
  });
}

test('every parser family of issue 12 has a fuzz target', () => {
  for (const family of PARSER_FAMILIES) assert.ok(FUZZ_TARGETS.some((t) => t.families.includes(family)), `no target for ${family}`);
  const names = new Set(FUZZ_TARGETS.map((t) => t.name));
  assert.equal(names.size, FUZZ_TARGETS.length, 'target names are unique');
  for (const name of [
    'mesh.decodeHello',
    'mesh.decodeControlMessage',
    'mesh.FrameDecoder',
    'mesh.decodeEntries',
    'mesh.decodeDigest',
    'ipam.decodeIpamMessage',
    'ipam.decodeRing',
    'dns.decodeRecords',
    'dataplane.decodeDataplaneGossip',
    'relay.decodeRelayPacket',
    'relay.decodeHeader',
    'relay.decodeBatchBody',
    'relay.openPacket',
    'relay.vnetHeaderOk',
    'os.netlink.decodeMessages',
    'os.netlink.decodeAttrs',
    'dns.DnsServer.answer',
    'dns.parseResolvConf',
    'api.requestBodies',
    'cni.decodeStdin+parseNetConf',
    'cni.parseEnv',
    'cni.parseCniArgs',
    'cni.runPlugin',
    'docker.DockerPlugin.handle',
    'docker.parseEvent',
    'docker.parseInspect',
    'cli.runCli',
    'cli.launchOptions',
  ]) {
    assert.ok(names.has(name), `target ${name} is gone`);
  }
});

test('the API target feeds every route with a request schema of every route table', () => {
  const fed = new Set(FUZZ_TARGETS.flatMap((t) => (t.families.includes('http-api') ? (t.routes ?? []) : [])));
  const expected: string[] = [];
  for (const [table, routes] of Object.entries(API_ROUTE_TABLES)) {
    for (const [name, route] of Object.entries(routes as Record<string, RouteContract>)) if (route.request) expected.push(`${table}.${name}`);
  }
  assert.ok(expected.length > 10, `only ${expected.length} routes with a request schema`);
  for (const id of expected) assert.ok(fed.has(id), `route ${id} is not fuzzed`);
  assert.equal(apiRoutes().length, expected.length);
  for (const table of Object.keys(API_ROUTE_TABLES)) assert.ok([...fed].some((id) => id.startsWith(`${table}.`)) || !expected.some((id) => id.startsWith(`${table}.`)), `table ${table}`);
});

test('the Docker target knows every driver path DockerPlugin serves', () => {
  const source = readFileSync(join(process.cwd(), 'src', 'docker', 'plugin.ts'), 'utf8');
  const served = [...source.matchAll(/case '(\/[A-Za-z]+\.[A-Za-z]+)'/g)].map((m) => m[1]!);
  assert.ok(served.length >= 15, `found ${served.length} paths in plugin.ts`);
  assert.deepEqual([...DOCKER_PLUGIN_PATHS].sort(), [...new Set(served)].sort());
});
