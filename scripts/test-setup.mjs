#!/usr/bin/env node
// Prepares what the test suite needs outside node_modules: the Kafka mock broker binaries (built from
// test/support/kafka/mockbroker.c against Debian's librdkafka, and against a recent librdkafka built from
// source for the protocol-version tests), the kcat CLI, stunnel and openssl for the Kafka TLS
// tests, and chromium for the UI tests.
// Runs as `npm test`'s pretest.
// On a fresh Debian machine it installs the system packages itself when it can (root + apt-get);
// otherwise it says what to install. When everything is in place it only stats a few files.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = path.join(root, 'test/support/kafka/mockbroker.c');
const binary = path.join(root, 'test/support/kafka/mockbroker');
const recentBinary = path.join(root, 'test/support/kafka/mockbroker-recent');
/**
 * Debian's librdkafka (2.0.2) mocks Metadata v2, Fetch v11 and Produce v7 at most; the librdkafka whose source
 * this npm package bundles (2.15.1) mocks Metadata v12, Fetch v16 and Produce v10, with leader epochs checked.
 */
const RECENT_LIBRDKAFKA_PACKAGE = '@confluentinc/kafka-javascript@1.10.1';
const recentCache = path.join(root, 'test/support/kafka/.librdkafka');

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
  // librdkafka's static library is built from source with make.
  if (!fs.existsSync(recentBinary) && !onPath('make')) missing.push('make');
  // The streaming UI tests drive a real headless browser.
  if (!onPath('chromium')) missing.push('chromium');
  // gcc only recommends the C library headers; --no-install-recommends would leave them out.
  if (!hasHeader('stdio.h')) missing.push('libc6-dev');
  return missing;
}

function isFresh(built) {
  try {
    return fs.statSync(built).mtimeMs >= fs.statSync(source).mtimeMs;
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

if (!isFresh(binary)) {
  console.log('test-setup: building test/support/kafka/mockbroker');
  try {
    execFileSync('gcc', ['-O2', '-Wall', '-o', binary, source, '-lrdkafka'], { stdio: 'inherit' });
  } catch {
    console.error('test-setup: gcc failed to build the mock broker; see the compiler output above.');
    process.exit(1);
  }
}

/** Builds the recent librdkafka's static library from its source (about 2.5 minutes on 2 cores), once. */
function buildRecentLibrdkafka() {
  const dir = path.join(recentCache, 'package/deps/librdkafka');
  const library = path.join(dir, 'src/librdkafka.a');
  if (fs.existsSync(library)) return dir;
  fs.mkdirSync(recentCache, { recursive: true });
  console.log(`test-setup: building librdkafka from the source in ${RECENT_LIBRDKAFKA_PACKAGE} (a few minutes, once)`);
  const tarball = execFileSync(
    'npm',
    ['pack', RECENT_LIBRDKAFKA_PACKAGE, '--pack-destination', recentCache, '--loglevel', 'error'],
    {
      cwd: recentCache,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
    .trim()
    .split('\n')
    .pop();
  execFileSync('tar', ['xzf', path.join(recentCache, tarball), 'package/deps/librdkafka'], { cwd: recentCache });
  fs.rmSync(path.join(recentCache, tarball));
  // Only what the mock cluster needs: no TLS, SASL/GSSAPI, HTTP or external codec libraries.
  const flags = ['--disable-ssl', '--disable-gssapi', '--disable-curl', '--disable-zstd', '--disable-lz4-ext'];
  execFileSync('./configure', flags, { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  const jobs = String(Math.max(1, os.availableParallelism()));
  execFileSync('make', ['-j', jobs, '-C', 'src', 'librdkafka.a'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  return dir;
}

if (!isFresh(recentBinary)) {
  try {
    const dir = buildRecentLibrdkafka();
    const include = path.join(recentCache, 'include');
    fs.mkdirSync(path.join(include, 'librdkafka'), { recursive: true });
    for (const header of ['rdkafka.h', 'rdkafka_mock.h'])
      fs.copyFileSync(path.join(dir, 'src', header), path.join(include, 'librdkafka', header));
    // The libraries configure found (zlib, libdl, ...), as its Makefile links them.
    const libs = fs
      .readFileSync(path.join(dir, 'Makefile.config'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('LIBS+='))
      .flatMap((l) => l.slice('LIBS+='.length).trim().split(/\s+/))
      .filter(Boolean);
    console.log('test-setup: building test/support/kafka/mockbroker-recent');
    execFileSync(
      'gcc',
      ['-O2', '-Wall', '-I', include, '-o', recentBinary, source, path.join(dir, 'src/librdkafka.a'), ...libs],
      { stdio: 'inherit' },
    );
  } catch (err) {
    console.error(`test-setup: building the recent mock broker failed: ${err.message}`);
    process.exit(1);
  }
}
