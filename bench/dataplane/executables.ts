import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** True if `name` is an executable file in one of the PATH directories (like `command -v`). */
export function onPath(name: string, pathVar: string = process.env['PATH'] ?? ''): boolean {
  if (name.includes('/')) return false;
  for (const dir of pathVar.split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/** The required executables that cannot be found. */
export function missingExecutables(names: readonly string[], pathVar?: string): string[] {
  return names.filter((n) => !onPath(n, pathVar));
}
