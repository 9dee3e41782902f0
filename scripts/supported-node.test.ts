// Every installed package accepts the oldest Node.js the project supports: `npm install` warns about none (EBADENGINE).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import semver from 'semver';

interface LockedPackage { version?: string; engines?: { node?: string } | string[] }

const root = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8')) as { packages: Record<string, LockedPackage> };

describe('supported Node.js versions', () => {
  const floor = semver.minVersion(root.engines.node);

  it('the project states its floor: Node.js 20.19', () => {
    assert.equal(floor?.version, '20.19.0');
  });

  it('every locked package (dev dependencies included) runs on the floor and on this Node.js', () => {
    const refusing: string[] = [];
    for (const [path, pkg] of Object.entries(lock.packages)) {
      const range = Array.isArray(pkg.engines) ? undefined : pkg.engines?.node;
      if (range === undefined || path === '') continue;
      for (const version of [floor?.version ?? '', process.versions.node]) {
        if (!semver.satisfies(version, range)) refusing.push(`${path}@${pkg.version}: node ${range} refuses ${version}`);
      }
    }
    assert.deepEqual(refusing, []);
  });
});
