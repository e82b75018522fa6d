#!/usr/bin/env node
// Prepares what the test suite needs outside node_modules: the Kafka mock broker binary (built from
// test/support/kafka/mockbroker.c against librdkafka), the kcat CLI, stunnel and openssl for the Kafka TLS
// tests, and chromium for the UI tests.
// Runs as `npm test`'s pretest.
// On a fresh Debian machine it installs the system packages itself when it can (root + apt-get);
// otherwise it says what to install. When everything is in place it only stats a few files.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = path.join(root, 'test/support/kafka/mockbroker.c');
const binary = path.join(root, 'test/support/kafka/mockbroker');

function onPath(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function hasHeader(name) {
  const dirs = ['/usr/include', '/usr/local/include', ...(process.env.CPATH ?? '').split(':').filter(Boolean)];
  return dirs.some((d) => fs.existsSync(path.join(d, name)));
}

/** Debian packages whose files are missing. */
function missingPieces() {
  const missing = [];
  if (!hasHeader('librdkafka/rdkafka_mock.h')) missing.push('librdkafka-dev');
  if (!onPath('kcat')) missing.push('kcat');
  // Kafka over TLS is tested through stunnel, with certificates made by openssl.
  if (!onPath('stunnel')) missing.push('stunnel4');
  if (!onPath('openssl')) missing.push('openssl');
  if (!onPath('gcc')) missing.push('gcc');
  // The streaming UI tests drive a real headless browser.
  if (!onPath('chromium')) missing.push('chromium');
  // gcc only recommends the C library headers; --no-install-recommends would leave them out.
  if (!hasHeader('stdio.h')) missing.push('libc6-dev');
  return missing;
}

function binaryIsFresh() {
  try {
    return fs.statSync(binary).mtimeMs >= fs.statSync(source).mtimeMs;
  } catch {
    return false;
  }
}

function tryAptInstall(missing) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !onPath('apt-get')) return false;
  console.log(`test-setup: installing ${missing.join(' ')} with apt-get ...`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
  // A fresh image often has empty package lists; update only when the first attempt fails.
  if (install().status === 0) return true;
  spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
  return install().status === 0;
}

function fail(missing, why) {
  console.error(
    `test-setup: the tests need ${missing.join(', ')} (${why}).\n` +
      `  Debian/Ubuntu: sudo apt-get install -y ${missing.join(' ')}\n` +
      `  Then run npm test again.`,
  );
  process.exit(1);
}

let missing = missingPieces();
if (missing.length > 0) {
  if (!tryAptInstall(missing)) fail(missing, 'not installed, and this process cannot apt-get install as root');
  missing = missingPieces();
  if (missing.length > 0) fail(missing, 'still missing after apt-get install');
}

if (!binaryIsFresh()) {
  console.log('test-setup: building test/support/kafka/mockbroker');
  try {
    execFileSync('gcc', ['-O2', '-Wall', '-o', binary, source, '-lrdkafka'], { stdio: 'inherit' });
  } catch {
    console.error('test-setup: gcc failed to build the mock broker; see the compiler output above.');
    process.exit(1);
  }
}
