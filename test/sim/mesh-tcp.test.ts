/**
 * The shared mesh scenarios over the real TcpTransport on 127.0.0.1 (real timers, short
 * intervals): the same assertions as the in-memory run in mesh-shared.test.ts.
 */
import { test } from 'node:test';
import { meshScenarios } from '../helpers/mesh-scenarios.js';
import { TcpTestMesh } from '../helpers/test-mesh-tcp.js';

for (const [name, scenario] of Object.entries(meshScenarios)) {
  test(`tcp: ${name}`, { timeout: 30_000 }, () => scenario((n, opts) => TcpTestMesh.create(n, opts)));
}
