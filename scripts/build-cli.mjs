#!/usr/bin/env node
/**
 * Bundles the CLI's start-up path into one CommonJS file, dist/src/cli/loom.cjs (what bin/loom
 * runs), with esbuild. Part of `npm run build`, after tsc. Why: `loom --help` used to load ~150
 * ES modules (the client's zod schemas among them) and took 2.8x as long as `node -e 0`. The
 * commands now load their work lazily (`await import(...)` in their actions); what every start
 * still needs (commander, the command definitions, a few constants) is read from one file.
 * CommonJS because Node's ES module loader costs start-up time of its own, and an ES module's
 * `import ... from 'node:fs'` loads fs/promises, streams and readline with it.
 *
 * Every dynamic `import()` stays outside the bundle (the client, the daemon, the option parsers,
 * the demo), loaded from dist/ as tsc wrote it: the daemon runs exactly the modules the tests
 * run. One exception, BUNDLED_DYNAMIC: the hot commands' zod-free client. The bundle sits beside main.js, so those relative specifiers are unchanged. A bundled
 * module other than the entry may not use `import.meta` (its paths would move with it) nor
 * import() a computed specifier: the build fails. src/core/errors is bundled too; LoomError's
 * instanceof works across module copies (src/core/errors.ts).
 */
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cliDir = join(root, 'dist', 'src', 'cli');
const entry = join(cliDir, 'main.js');
const outfile = join(cliDir, 'loom.cjs');

/** `./x.js` from the bundle's folder to `target`, as a module specifier. */
function fromBundle(target) {
  const rel = relative(cliDir, target);
  return rel.startsWith('.') ? rel : `./${rel}`;
}

/**
 * Loaded by import() but bundled all the same: the hot commands' client (`loom run`, `rm`, `ps`),
 * a dozen small modules without any package. From the bundle it needs no ES module loader, whose
 * first use costs ~20-40 ms here. Its own import()s (the schemas, for another build's answers)
 * stay outside like every other.
 */
const BUNDLED_DYNAMIC = new Set([join(root, 'dist', 'src', 'client', 'containers.js')]);

const daemonDir = join(root, 'dist', 'src', 'daemon');
const daemonEntry = join(daemonDir, 'entry.js');
const daemonOutfile = join(daemonDir, 'loomd.cjs');

/**
 * The daemon's entry (launch --foreground) comes from its own bundle, loomd.cjs, by require():
 * an import() of a CommonJS file from here would start Node's ES module loader in the router for
 * that one file (five more builtins, its module records, and cjs-module-lexer scanning the 1 MB
 * bundle for export names: ~0.2 MB of V8 heap kept and 1-2 MB of malloc'd memory until the next
 * trim). The `import()` in the source becomes a promise of the required module. Every other
 * import() loads from dist as tsc wrote it.
 */
const DAEMON_REQUIRE = 'daemon-require';
const dynamicImportsOutside = {
  name: 'dynamic-imports-outside',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      if (args.namespace === DAEMON_REQUIRE) return { path: args.path, external: true };
      if (args.kind !== 'dynamic-import') return undefined;
      const target = resolve(args.resolveDir, args.path);
      if (BUNDLED_DYNAMIC.has(target)) return undefined;
      if (target === daemonEntry) return { path: fromBundle(daemonOutfile), namespace: DAEMON_REQUIRE };
      return { path: fromBundle(target), external: true };
    });
    b.onLoad({ filter: /.*/, namespace: DAEMON_REQUIRE }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

/**
 * commander requires node:child_process at load time, for executable subcommands (`git-style`
 * separate programs), which Loom does not use; loading it costs more than the rest of the start.
 * Inside the bundle commander gets a stand-in that loads the real module on first use.
 */
const lazyChildProcess = {
  name: 'lazy-child-process',
  setup(b) {
    b.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      /[\\/]node_modules[\\/]commander[\\/]/.test(args.importer) ? { path: 'child_process', namespace: 'lazy-child-process' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy-child-process' }, () => ({
      contents: "module.exports = { spawn: (...args) => require('node:child_process').spawn(...args) };",
      loader: 'js',
    }));
  },
};

const result = await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  plugins: [dynamicImportsOutside, lazyChildProcess],
  // The entry's own import.meta.url (ctx.entry, re-executed by `loom launch`) is the bundle's.
  define: { 'import.meta.url': '__loomBundleUrl' },
  banner: { js: "const __loomBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  metafile: true,
  logLevel: 'warning',
  legalComments: 'none',
});

/**
 * Fails the build when a bundled module of dist would behave differently inside the bundle:
 * `import.meta` (its paths would move with it; `allowMeta` lists modules that only walk up from
 * it to the package root, which works from the bundle's folder too) or import() of a computed
 * specifier (resolved from the bundle's place). Returns the dist modules bundled.
 */
function checkBundled(result, what, allowMeta) {
  const bundled = Object.keys(result.metafile.inputs)
    .map((input) => resolve(root, input))
    .filter((file) => file.startsWith(join(root, 'dist')));
  const misplaced = bundled.filter((file) => !allowMeta.includes(file) && /\bimport\.meta\b/.test(readFileSync(file, 'utf8')));
  const computed = bundled.filter((file) => /\bimport\(\s*[^'"\s]/.test(readFileSync(file, 'utf8')));
  if (misplaced.length > 0 || computed.length > 0) {
    if (misplaced.length > 0) console.error(`build-cli: ${what}: these modules use import.meta and would resolve paths from the bundle's place: ${misplaced.map((f) => relative(root, f)).join(', ')}`);
    if (computed.length > 0) console.error(`build-cli: ${what}: these modules import() a computed specifier, which would resolve from the bundle's place: ${computed.map((f) => relative(root, f)).join(', ')}`);
    console.error('build-cli: import a literal path, or find paths from the CLI entry (ctx.entry).');
    process.exit(1);
  }
  return bundled;
}

const bundled = checkBundled(result, 'the CLI bundle', [entry]);
const bytes = result.metafile.outputs[relative(root, outfile)]?.bytes ?? 0;
console.log(`build-cli: ${relative(root, outfile)} (${bundled.length} modules of dist and commander's, ${Math.round(bytes / 1024)} KiB)`);

/**
 * The daemon: src/daemon/entry.ts and all it loads, its dynamic imports included, in one
 * minified CommonJS file (dist/src/daemon/loomd.cjs) that the CLI bundle requires for `launch
 * --foreground` (docs/BENCHMARKS.md, issue 14 "Memory": a router holds every module's source in
 * V8's heap for its lifetime; one minified file is a fraction of ~400 modules). The native addons
 * stay outside (loaded by require from node_modules; koffi's JavaScript is inside, see below).
 * Names are not kept: esbuild's `keepNames` wraps every function and class in a call that
 * redefines its `name`, ~1,650 of them, which gives each its own property store and hidden class:
 * 8-9 MB more idle RSS per router, measured in one interleaved run (docs/BENCHMARKS.md, issue 14
 * "Memory, third pass"). Nothing in the router reads a minified name; the log's error `type` is
 * the error's `name` (daemon/log.ts), which Loom's error classes set. A source map is written
 * beside it for reading stack traces (`node --enable-source-maps`). A top-level await, an
 * unresolvable import or a misplaced import.meta fails the build.
 */
const NATIVE_ADDONS = ['better-sqlite3', 'sodium-native'];

/**
 * koffi's index.js (one file, built by its authors) requires node:https and node:zlib at load for
 * its install-time download tools, which a router never runs; with node:https comes node:tls. So
 * the daemon bundle holds koffi's JavaScript, with those two requires made lazy (a stand-in that
 * requires the module on first property access) and its native module still required from
 * koffi's own folder, found at run time exactly as `require('koffi')` found it when external. The
 * build fails if koffi's index no longer has the lines this relies on.
 */
const KOFFI_EAGER = ['var http = require("https");', 'var zlib = require("zlib");'];
const bundledKoffi = {
  name: 'bundled-koffi',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]koffi[\\/]index\.js$/ }, (args) => {
      let source = readFileSync(args.path, 'utf8');
      const missing = [...KOFFI_EAGER, 'require("./build/koffi/', '__dirname'].filter((line) => !source.includes(line));
      if (missing.length > 0) throw new Error(`build-cli: ${args.path} no longer has ${missing.join(', ')}: update the bundled-koffi plugin`);
      for (const line of KOFFI_EAGER) {
        const [, name, id] = /^var (\w+) = require\("(\w+)"\);$/.exec(line);
        source = source.replace(line, `var ${name} = new Proxy({}, { get: (_, key) => require(${JSON.stringify(id)})[key] });`);
      }
      source = source.replaceAll('require("./build/koffi/', 'require(__koffiDir + "/build/koffi/').replaceAll('__dirname', '__koffiDir');
      // A variable, so esbuild leaves the resolution to run time (from the bundle, like an external require).
      const header = 'var __koffiId = "koffi", __koffiDir = require("path").dirname(require.resolve(__koffiId));\n';
      return { contents: header + source, loader: 'js' };
    });
  },
};

/**
 * prom-client's index requires its Pushgateway client at load, and with it node:https, node:tls
 * and node:zlib (a dozen builtins, ~160 KB of V8 heap and their code pages), which the router
 * never uses: it is scraped, it does not push. In the daemon bundle `Pushgateway` becomes a getter
 * that requires the module on first use (still inside the bundle). The build fails if
 * prom-client's index no longer has that line.
 */
const PUSHGATEWAY_LINE = "exports.Pushgateway = require('./lib/pushgateway');";
const lazyPushgateway = {
  name: 'lazy-pushgateway',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]prom-client[\\/]index\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      if (!source.includes(PUSHGATEWAY_LINE)) throw new Error(`build-cli: ${args.path} no longer has "${PUSHGATEWAY_LINE}": update the lazy-pushgateway plugin`);
      const lazy = "Object.defineProperty(exports, 'Pushgateway', { enumerable: true, get: () => require('./lib/pushgateway') });";
      return { contents: source.replace(PUSHGATEWAY_LINE, lazy), loader: 'js' };
    });
  },
};
/**
 * zod's namespace object (`z`) re-exports all of its ~60 locales' error messages (`z.locales`),
 * and since the code uses `z` as a value esbuild cannot drop any of them: 255 KB of the daemon
 * bundle's 1 MB, held as source text in V8's heap for the router's life. Loom sets no locale
 * (zod configures English itself, from `locales/en.js` directly), so in the daemon bundle the
 * locales index exports English only. The build fails if that index no longer has the line this
 * keeps.
 */
const ENGLISH_LOCALE_LINE = 'export { default as en } from "./en.js";';
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      if (!source.split('\n').includes(ENGLISH_LOCALE_LINE)) throw new Error(`build-cli: ${args.path} no longer has '${ENGLISH_LOCALE_LINE}': update the zod-english-only plugin`);
      return { contents: `${ENGLISH_LOCALE_LINE}\n`, loader: 'js' };
    });
  },
};
/**
 * pino requires node:worker_threads at load, twice: lib/tools.js for `isMainThread` (read only
 * when a log destination is built from options, which the daemon never does: it hands pino its
 * own destination, daemon/log.ts) and lib/transport.js for thread-stream (used only by pino's
 * worker transports, which the daemon never starts). worker_threads brings five more internal
 * modules: ~0.37 MB of RSS in a Node that already listens (their code pages and heap). In the
 * daemon bundle both become lookups at the point of use. The build fails if either line moved.
 */
const PINO_LAZY = [
  { file: /[\\/]node_modules[\\/]pino[\\/]lib[\\/]tools\.js$/, from: ["const { isMainThread } = require('worker_threads')\n", 'if (!opts.sync && isMainThread) {'], to: ['', "if (!opts.sync && require('worker_threads').isMainThread) {"] },
  { file: /[\\/]node_modules[\\/]pino[\\/]lib[\\/]transport\.js$/, from: ["const ThreadStream = require('thread-stream')\n"], to: ["const ThreadStream = function ThreadStream (opts) { return new (require('thread-stream'))(opts) }\n"] },
];
const lazyPinoWorkers = {
  name: 'lazy-pino-workers',
  setup(b) {
    for (const { file, from, to } of PINO_LAZY) {
      b.onLoad({ filter: file }, (args) => {
        let source = readFileSync(args.path, 'utf8');
        from.forEach((line, i) => {
          if (source.split(line).length !== 2) throw new Error(`build-cli: ${args.path} no longer has "${line.trim()}" once: update the lazy-pino-workers plugin`);
          source = source.replace(line, to[i]);
        });
        return { contents: source, loader: 'js' };
      });
    }
  },
};
const daemon = await build({
  entryPoints: [daemonEntry],
  outfile: daemonOutfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: NATIVE_ADDONS,
  plugins: [lazyPushgateway, bundledKoffi, zodEnglishOnly, lazyPinoWorkers],
  minify: true,
  sourcemap: true,
  // src/api/ui-routes.ts finds ui/ by walking up from its own file: from the bundle's folder too.
  define: { 'import.meta.url': '__loomBundleUrl' },
  banner: { js: "const __loomBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  metafile: true,
  logLevel: 'warning',
  legalComments: 'none',
});
// src/os/dns-responder.ts finds dist/bin/libloom-dns.so by walking up from its own file, as ui-routes does.
const daemonModules = checkBundled(daemon, 'the daemon bundle', [join(root, 'dist', 'src', 'api', 'ui-routes.js'), join(root, 'dist', 'src', 'os', 'dns-responder.js')]);
const daemonBytes = daemon.metafile.outputs[relative(root, daemonOutfile)]?.bytes ?? 0;
const daemonInputs = Object.keys(daemon.metafile.inputs).length;
console.log(`build-cli: ${relative(root, daemonOutfile)} (${daemonInputs} modules, ${daemonModules.length} of them Loom's, ${Math.round(daemonBytes / 1024)} KiB)`);
