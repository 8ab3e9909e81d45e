/**
 * Holds the line on which way dependencies point (docs/ARCHITECTURE.md): only src/os starts
 * processes or opens netlink; core depends on nothing; no import circle anywhere in src; the CLI
 * reaches the daemon through the typed client only and never pulls in the packet path (mesh,
 * data plane, relay) at load time; the test lab (src/lab) sits on the OS door and only the demo
 * among the product's folders uses it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
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

/** The file (relative to src) a relative import names, or null for a package. */
function target(i: Import): string | null {
  if (!i.spec.startsWith('.')) return null;
  return relative(SRC, resolve(SRC, dirname(i.file), i.spec.replace(/\.js$/, '.ts')));
}

/** Every cycle of `edges` (file -> files), each as the path that closes it; depth-first. */
function cyclesOf(edges: Map<string, string[]>): string[] {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const found: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    path.push(file);
    for (const next of edges.get(file) ?? []) {
      const s = state.get(next);
      if (s === 'open') found.push([...path.slice(path.indexOf(next)), next].join(' -> '));
      else if (s === undefined && edges.has(next)) visit(next);
    }
    path.pop();
    state.set(file, 'done');
  };
  for (const file of edges.keys()) if (!state.has(file)) visit(file);
  return found;
}

function importGraph(imports: readonly Import[]): Map<string, string[]> {
  const edges = new Map<string, string[]>();
  for (const i of imports) {
    const to = target(i);
    if (!edges.has(i.file)) edges.set(i.file, []);
    if (to !== null) edges.get(i.file)!.push(to);
  }
  return edges;
}

test('no import circle anywhere in src (type-only imports count too)', () => {
  assert.deepEqual(cyclesOf(importGraph(all)), []);
});

test('the cycle check finds a circle (guards against a vacuous pass)', () => {
  const edges = new Map([
    ['a.ts', ['b.ts']],
    ['b.ts', ['c.ts']],
    ['c.ts', ['a.ts']],
    ['d.ts', ['a.ts']],
  ]);
  assert.deepEqual(cyclesOf(edges), ['a.ts -> b.ts -> c.ts -> a.ts']);
});

/**
 * The daemon side of every subsystem: its classes, routes, factories and the runtime's records;
 * the raw API client and server; the daemon's own wiring and lifecycle.
 */
const DAEMON_SIDE =
  /(^|\/)(api\/(client|server|route-table|router-routes)|containers\/(daemon|routes|types|runtime|store)|(ipam|dns)\/daemon(-api|-factory)?|dataplane\/controller\/subsystem|daemon\/(subsystems?|subsystem-set|host-address|host-address-routes|background|state-dir))\.js$/;

test('the CLI reaches the daemon only through the typed client (src/client): no raw calls, no daemon-side imports', () => {
  const cliFiles = sources(join(SRC, 'cli'));
  assert.ok(cliFiles.length > 10);
  const rawCalls = cliFiles.filter((f) => /\.call\s*[<(]|new\s+ApiClient\b|\bfetch\s*\(/.test(readFileSync(f, 'utf8'))).map((f) => relative(SRC, f));
  assert.deepEqual(rawCalls, [], 'a CLI command calls the daemon through a typed method (client.containers.run(...)), not call(METHOD, PATH)');
  const offenders = all.filter((i) => i.file.startsWith('cli/') && DAEMON_SIDE.test(i.spec));
  assert.deepEqual(offenders, []);
  // Launch runs the daemon in-process, loaded lazily: only the type of its router factory is static.
  const foreground = all.filter((i) => i.file.startsWith('cli/') && /daemon\/foreground\.js$/.test(i.spec) && !i.typeOnly);
  assert.deepEqual(foreground, []);
  assert.ok(allWithDynamic.some((i) => i.file === 'cli/command.ts' && !i.typeOnly && /client\/index\.js$/.test(i.spec)), 'the CLI builds its client from src/client');
});

/** Every module `loom` loads before a command's action runs: the static closure of cli/main.ts (or of `root`). */
function startupClosure(root = 'cli/main.ts'): Set<string> {
  const seen = new Set<string>([root]);
  const queue = [root];
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    for (const i of all.filter((x) => x.file === file && !x.typeOnly)) {
      const t = target(i) ?? `npm:${i.spec}`;
      if (seen.has(t)) continue;
      seen.add(t);
      if (!t.startsWith('npm:')) queue.push(t);
    }
  }
  return seen;
}

test('`loom --help` loads commander, the CLI and a few constants: the client, zod and the daemon load only in an action (issue 14, CLI start)', () => {
  const closure = startupClosure();
  assert.ok(closure.has('cli/commands/launch.ts') && closure.has('npm:commander'), 'the closure follows imports (guards against a vacuous pass)');
  const packages = [...closure].filter((m) => m.startsWith('npm:') && !m.startsWith('npm:node:'));
  assert.deepEqual(packages, ['npm:commander'], 'the only package loaded at start-up');
  const outside = [...closure].filter((m) => !m.startsWith('npm:') && !/^(cli|core)\//.test(m) && !STARTUP_CONSTANTS.has(m));
  assert.deepEqual(outside, [], 'a module outside cli/ and core/ at start-up: import it inside the action (await import) or add it to STARTUP_CONSTANTS if it is only constants');
});

test('the hot commands\' client (`loom run`, `rm`, `ps`...) loads no package: zod and the route tables only for another build\'s answer (issue 14, container start)', () => {
  const closure = startupClosure('client/containers.ts');
  assert.ok(closure.has('api/transport.ts') && closure.has('containers/api-paths.ts'), 'the closure follows imports (guards against a vacuous pass)');
  assert.deepEqual([...closure].filter((m) => m.startsWith('npm:') && !m.startsWith('npm:node:')), [], 'no package');
  assert.deepEqual([...closure].filter((m) => /(^|\/)(contract|validate|api)\.ts$/.test(m)), [], 'no schema module');
  const hot = ['run', 'rm', 'ps', 'attach', 'detach', 'exec'];
  for (const c of hot) assert.ok(allWithDynamic.some((i) => i.file === `cli/commands/${c}.ts` && /command\.js$/.test(i.spec)) && readFileSync(join(SRC, 'cli', 'commands', `${c}.ts`), 'utf8').includes('containersFor('), `${c} uses containersFor`);
});

/** Modules outside cli/ and core/ that `loom --help` may load: constants for the help text, nothing else imported. */
const STARTUP_CONSTANTS = new Set(['api/version.ts', 'daemon/defaults.ts', 'dns/names.ts', 'dns/daemon-options.ts', 'dataplane/controller/settings.ts']);

test('the daemon-side pattern matches what it should (guards against a vacuous pass)', () => {
  for (const spec of ['../../containers/daemon.js', '../../containers/routes.js', '../../api/client.js', '../../ipam/daemon.js', '../../dns/daemon-api.js', '../../containers/types.js']) assert.ok(DAEMON_SIDE.test(spec), spec);
  for (const spec of ['../../client/index.js', '../../containers/api.js', '../../ipam/daemon-types.js', '../../daemon/options.js', '../../ipam/daemon-options.js']) assert.ok(!DAEMON_SIDE.test(spec), spec);
});

test('configuration is read at the edge: process.env only in cli, daemon, demo, the lab, the runner default and the CNI plugin\'s entry', () => {
  const allowed = (file: string): boolean =>
    /^(cli|daemon|demo|lab)\//.test(file) || file === 'os/runner.ts' || file === 'cni/main.ts';
  const readers = sources(SRC)
    .map((f) => relative(SRC, f))
    .filter((f) => /\bprocess\.env\b/.test(readFileSync(join(SRC, f), 'utf8')));
  assert.ok(readers.some((f) => f.startsWith('daemon/') || f.startsWith('cli/')), 'the check sees the edge (guards against a vacuous pass)');
  assert.deepEqual(readers.filter((f) => !allowed(f)), []);
});

/** What bin/loom-cni loads: every pod start pays for it (the fixed CNI contract: no zod, commander or pino). */
test('the CNI plugin side loads only node built-ins, its own folder\'s plugin files and the OS runner', () => {
  const seen = new Set<string>();
  const queue = ['cni/main.ts'];
  const packages: string[] = [];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const i of allWithDynamic.filter((x) => x.file === file && !x.typeOnly)) {
      const to = target(i);
      if (to === null) {
        if (!i.spec.startsWith('node:')) packages.push(`${file} -> ${i.spec}`);
      } else queue.push(to);
    }
  }
  assert.deepEqual(packages, [], 'no npm package at plugin start-up');
  const outside = [...seen].filter((f) => !/^cni\/(main|plugin|conf|spec|result|router-client|delegate|wire)\.ts$/.test(f) && !/^(os\/runner|core\/errors)\.ts$/.test(f));
  assert.deepEqual(outside, [], 'the plugin side stays small');
  assert.ok(seen.has('cni/plugin.ts') && seen.has('os/runner.ts'), 'the walk follows imports (guards against a vacuous pass)');
});

test('src/kube loads only with --kube-peers: outside it, only its launch options and lazy front are imported (and cluster-size, dynamically)', () => {
  const LIGHT = /^kube\/(launch-options|lazy)\.ts$/;
  const outside = allWithDynamic.filter((i) => !i.file.startsWith('kube/') && (target(i) ?? '').startsWith('kube/'));
  assert.ok(outside.some((i) => i.file === 'daemon/subsystems.ts'), 'the composition root builds the kube subsystem (guards against a vacuous pass)');
  const heavyStatic = outside.filter((i) => !i.typeOnly && !LIGHT.test(target(i) ?? '') && !dynamicImportsOf(join(SRC, i.file)).some((d) => d.spec === i.spec));
  assert.deepEqual(heavyStatic, []);
  // The lazy front and the launch options import nothing of src/kube at run time but each other.
  const fronts = all.filter((i) => LIGHT.test(i.file) && !i.typeOnly && (target(i) ?? '').startsWith('kube/') && !LIGHT.test(target(i) ?? ''));
  assert.deepEqual(fronts, []);
  // And src/kube stands below the daemon: it never imports it.
  assert.deepEqual(allWithDynamic.filter((i) => i.file.startsWith('kube/') && /^(daemon|cli)\//.test(target(i) ?? '')), []);
});

test('src/docker stands on core, os, api, the data plane address helpers and the containers attach path; only the daemon, the client and the CLI reach it', () => {
  const allowed = /^(core|os|api|docker)\/|^dataplane\/addresses\.ts$|^containers\/(attach|daemon|types)\.ts$/;
  const out = all.filter((i) => i.file.startsWith('docker/') && i.spec.startsWith('.') && !allowed.test(target(i) ?? ''));
  assert.deepEqual(out, []);
  const users = allWithDynamic.filter((i) => !i.file.startsWith('docker/') && (target(i) ?? '').startsWith('docker/'));
  assert.ok(users.length > 0, 'the daemon wires the docker subsystem (guards against a pattern that matches nothing)');
  const wrong = users.filter((i) => !/^(daemon\/(subsystems|options)\.ts|client\/index\.ts)$/.test(i.file) && !(i.file.startsWith('cli/') && /docker\/(api|options)\.ts$/.test(target(i) ?? '')));
  assert.deepEqual(wrong, []);
});
