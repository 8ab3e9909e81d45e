#!/usr/bin/env node
/**
 * Writes the build's digest into dist/src/core/build-id.js (see src/core/build-id.ts): sha256 of
 * every compiled module under dist/src (path and contents, in path order), that file excepted.
 * Part of `npm run build`, after tsc and before the CLI bundle (which does not include it).
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const distSrc = join(root, 'dist', 'src');
const target = join(distSrc, 'core', 'build-id.js');

function modules(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return modules(path);
    // tsc's modules only: the bundles (*.cjs) are made from them afterwards, with this id inside.
    return e.name.endsWith('.js') && path !== target ? [path] : [];
  });
}

const hash = createHash('sha256');
for (const path of modules(distSrc).sort()) hash.update(relative(distSrc, path)).update('\0').update(readFileSync(path)).update('\0');
const id = hash.digest('hex').slice(0, 16);
const compiled = readFileSync(target, 'utf8');
const rewritten = compiled.replace(/export const BUILD_ID = [^;]*;/, `export const BUILD_ID = '${id}';`);
if (rewritten === compiled && !compiled.includes(`'${id}'`)) throw new Error(`build-id: no BUILD_ID declaration in ${target}`);
writeFileSync(target, rewritten);
console.log(`build-id: ${id}`);
