// The real `embedgate` command the bench runs: where it is, whether its compiled build is current, what it supports.
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../packages/embedgate/bin/embedgate.js', import.meta.url));
const PACKAGE = fileURLToPath(new URL('../../packages/embedgate/', import.meta.url));

function newestMtime(dir: string, suffix: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith(suffix)) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/**
 * True when a source file changed after the last build: the CLI (bin → dist/) would run older code. `tsc -b` leaves
 * an output that would come out the same untouched and records the build in its buildinfo, so that counts too.
 */
export function buildIsStale(): boolean {
  const built = Math.max(newestMtime(join(PACKAGE, 'dist'), '.js'), statSync(join(PACKAGE, 'tsconfig.tsbuildinfo'), { throwIfNoEntry: false })?.mtimeMs ?? 0);
  return newestMtime(join(PACKAGE, 'src'), '.ts') > built;
}

/** Whether `embedgate serve` takes --workers (its --help names it). */
export function supportsWorkers(): boolean {
  const usage = execFileSync(process.execPath, [BIN, 'serve', '--help'], { encoding: 'utf8' });
  return usage.includes('--workers');
}
