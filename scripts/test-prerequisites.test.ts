// What `npm test` does first on a machine that lacks the system packages the tests need: install them where it can,
// otherwise stop with one message naming them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ensurePrerequisites, PREREQUISITES, type Environment, type Prerequisite } from './test-prerequisites.js';

function machine(installed: Set<string>): Prerequisite[] {
  return [
    { purpose: 'browser tests', packages: ['chromium'], present: () => installed.has('chromium') },
    { purpose: 'session tests', packages: ['redis-server'], present: () => installed.has('redis-server') },
    { purpose: 'jupyter tests', packages: ['python3-notebook', 'python3-jwt'], present: () => installed.has('python3-notebook') && installed.has('python3-jwt') },
  ];
}

function environment(canInstall: boolean, installed: Set<string>, installWorks = true): Environment & { printed: string[]; installs: string[][] } {
  const printed: string[] = [];
  const installs: string[][] = [];
  return {
    canInstall,
    printed,
    installs,
    install(packages) {
      installs.push(packages);
      if (installWorks) packages.forEach((name) => installed.add(name));
      return installWorks;
    },
    print: (line) => printed.push(line),
  };
}

describe('npm test prerequisites', () => {
  it('finds every system package it lists on a machine the suite runs on', () => {
    const missing = PREREQUISITES.filter((p) => !p.present()).flatMap((p) => p.packages);
    assert.deepEqual(missing, [], 'the checks see what the tests use');
  });

  it('does nothing and prints nothing when everything is installed', () => {
    const installed = new Set(['chromium', 'redis-server', 'python3-notebook', 'python3-jwt']);
    const env = environment(true, installed);
    assert.equal(ensurePrerequisites(machine(installed), env), 0);
    assert.deepEqual(env.installs, []);
    assert.deepEqual(env.printed, []);
  });

  it('as root with apt-get: installs exactly the missing packages in one go, then goes on', () => {
    const installed = new Set(['redis-server']);
    const env = environment(true, installed);
    assert.equal(ensurePrerequisites(machine(installed), env), 0);
    assert.deepEqual(env.installs, [['chromium', 'python3-notebook', 'python3-jwt']]);
  });

  it('without the right to install: stops at once with one message naming the exact packages', () => {
    const installed = new Set(['chromium', 'python3-jwt']);
    const env = environment(false, installed);
    assert.equal(ensurePrerequisites(machine(installed), env), 1);
    assert.deepEqual(env.installs, [], 'nothing is installed');
    assert.equal(env.printed.length, 1, 'one message');
    const message = env.printed[0] as string;
    assert.match(message, /apt-get install -y --no-install-recommends redis-server python3-notebook python3-jwt$/);
    assert.doesNotMatch(message, /chromium/, 'what is installed is not named');
  });

  it('when apt-get fails or leaves something missing: exit 1, naming what is still missing', () => {
    const installed = new Set<string>(['chromium', 'python3-notebook', 'python3-jwt']);
    const env = environment(true, installed, false);
    assert.equal(ensurePrerequisites(machine(installed), env), 1);
    assert.deepEqual(env.installs, [['redis-server']]);
    assert.match(env.printed.at(-1) as string, /install -y --no-install-recommends redis-server$/);
  });
});
