/**
 * Holds the line on which way dependencies point (docs/ARCHITECTURE.md): only src/os starts
 * processes or opens netlink; core depends on nothing; the CLI reaches the daemon through the API
 * client and never pulls in the packet path (mesh, data plane, relay) at load time; the test lab
 * (src/lab) sits on the OS door and only the demo among the product's folders uses it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest folder above this file with a package.json (works from dist/ too). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('no package.json above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

const SRC = join(repoRoot(), 'src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

interface Import {
  file: string;
  spec: string;
  typeOnly: boolean;
}

/** Static imports and re-exports (dynamic `import()` is how the CLI defers the daemon). */
function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  const out: Import[] = [];
  for (const m of text.matchAll(/^\s*(import|export)\s+(type\s+)?[^'";]*?from\s+'([^']+)'/gm)) {
    out.push({ file: relative(SRC, file), spec: m[3]!, typeOnly: m[2] !== undefined });
  }
  for (const m of text.matchAll(/^\s*import\s+'([^']+)'/gm)) out.push({ file: relative(SRC, file), spec: m[1]!, typeOnly: false });
  return out;
}

const all = sources(SRC).flatMap(importsOf);

/** `import('...')` calls with a literal specifier: a deferred import still depends on its target. */
function dynamicImportsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)].map((m) => ({ file: relative(SRC, file), spec: m[1]!, typeOnly: false }));
}

const allWithDynamic = [...all, ...sources(SRC).flatMap(dynamicImportsOf)];

/** The file an import names, relative to src ("lab/index.js"), or null for node: and packages. */
function target(i: Import): string | null {
  return i.spec.startsWith('.') ? normalize(join(dirname(i.file), i.spec)) : null;
}

test('the source tree is where this test looks (guards against a vacuous pass)', () => {
  assert.ok(all.length > 100, `found only ${all.length} imports under ${SRC}`);
  assert.ok(all.some((i) => i.file.startsWith('cli/')));
});

test('only src/os starts processes (child_process) or talks netlink (koffi)', () => {
  const offenders = all.filter((i) => (i.spec === 'node:child_process' || i.spec === 'child_process' || i.spec === 'koffi') && !i.typeOnly && !i.file.startsWith('os/'));
  assert.deepEqual(offenders, []);
});

test('core depends on nothing else in Loom', () => {
  const offenders = all.filter((i) => i.file.startsWith('core/') && i.spec.startsWith('.') && !i.spec.startsWith('./'));
  assert.deepEqual(offenders, []);
});

/** Constants the CLI shows in its help; they import nothing but core (checked below). */
const CLI_VISIBLE_SETTINGS = /\/dataplane\/controller\/settings\.js$/;

test('the CLI does not load the packet path (mesh, data plane, relay) at start-up', () => {
  const offenders = all.filter((i) => i.file.startsWith('cli/') && !i.typeOnly && /\/(mesh|dataplane)\//.test(i.spec) && !CLI_VISIBLE_SETTINGS.test(i.spec));
  assert.deepEqual(offenders, []);
  const settingsImports = all.filter((i) => i.file === 'dataplane/controller/settings.ts' && !i.typeOnly && !i.spec.startsWith('../../core/'));
  assert.deepEqual(settingsImports, [], 'the settings the CLI loads stay free of the packet path');
});

test('subsystems do not reach into the CLI', () => {
  const offenders = all.filter((i) => !i.file.startsWith('cli/') && /(^|\/)cli\//.test(i.spec));
  assert.deepEqual(offenders, []);
});

/** The test lab, and the one product folder that runs it (`loom demo`). */
const LAB = /^lab\//;
const LAB_USERS = /^(lab|demo)\//;

test('product code never imports the test lab; only src/demo runs it', () => {
  const offenders = allWithDynamic.filter((i) => !LAB_USERS.test(i.file) && LAB.test(target(i) ?? ''));
  assert.deepEqual(offenders, []);
  assert.ok(
    all.some((i) => i.file.startsWith('demo/') && LAB.test(target(i) ?? '')),
    'the demo imports the lab (guards against a pattern that matches nothing)',
  );
});

test('the lab stands on the OS door: it imports only core, os and itself; os never imports the lab', () => {
  const labOffenders = allWithDynamic.filter((i) => LAB.test(i.file) && i.spec.startsWith('.') && !/^(core|os|lab)\//.test(target(i) ?? ''));
  assert.deepEqual(labOffenders, []);
  assert.ok(
    all.some((i) => LAB.test(i.file) && (target(i) ?? '').startsWith('os/')),
    'the lab imports src/os (guards against a pattern that matches nothing)',
  );
  const osOffenders = allWithDynamic.filter((i) => i.file.startsWith('os/') && LAB.test(target(i) ?? ''));
  assert.deepEqual(osOffenders, []);
});
