/**
 * A real headless browser for the UI tests: Debian's chromium (apt-get install chromium; scripts/test-setup.mjs
 * and .ci/run install it) driven by playwright-core, which downloads nothing: it launches the system binary.
 */
import * as fs from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

export type { Browser, Page } from 'playwright-core';

/** The browser binary: $SLUICE_CHROMIUM, else Debian's chromium. */
export const CHROMIUM = process.env.SLUICE_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Flags for a quiet, sandbox-free headless run on a CI machine (no GPU, no network of its own).
 * playwright-core adds --headless and a fresh temporary --user-data-dir itself.
 */
export const LAUNCH_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-dev-shm-usage',
  '--hide-scrollbars',
  '--mute-audio',
];

/** Starts headless chromium. Throws with a hint when it is not installed. */
export async function launchBrowser(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} not found: install it (Debian: apt-get install -y chromium) or set SLUICE_CHROMIUM`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS, timeout: 60_000 });
}
