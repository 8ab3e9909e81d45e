/** The shared mesh scenarios (test/helpers/mesh-scenarios.ts) over the in-memory simulation. */
import { test } from 'node:test';
import { meshScenarios } from '../helpers/mesh-scenarios.js';
import { createTestMesh } from '../helpers/test-mesh.js';

for (const [name, scenario] of Object.entries(meshScenarios)) {
  test(`memory: ${name}`, () => scenario((n, opts) => createTestMesh(n, { discovery: opts.discovery })));
}
