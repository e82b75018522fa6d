// Regenerates the sample data in this folder from the seeded generators (lib/cli/gen-samples.ts lists the
// `sluice gen` arguments of each set). Build first: `npx tsc -p tsconfig.json && node data/generate.mjs`.
import { fileURLToPath } from 'node:url';
import { writeSamples } from '../dist/lib/cli/gen-samples.js';

await writeSamples(fileURLToPath(new URL('.', import.meta.url)));
