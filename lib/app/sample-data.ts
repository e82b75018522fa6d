import { packagePath } from '../util/package-root.js';

/**
 * The `file:` source URI of a sample data set shipped in sluice's `data/` folder: `clickstream`,
 * `transactions`, `deposits` (text lines) or `bank` (see data/README.md). It points into the installed
 * package, so an app whose default input is sample data runs from any directory:
 * `inputs: { events: { default: sampleData('clickstream'), ... } }`.
 */
export function sampleData(name: string): string {
  return `file:${packagePath('data', name).split('/').map(encodeURIComponent).join('/')}`;
}
