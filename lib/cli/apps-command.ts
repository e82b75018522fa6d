import type { CommandModule } from 'yargs';
import { listApps } from '../app/app-runner.js';

/** `sluice apps`: one line per built-in app. */
export const appsCommandModule: CommandModule = {
  command: 'apps',
  describe: 'List the built-in apps',
  handler: async () => {
    const apps = await listApps();
    const width = Math.max(0, ...apps.map((a) => a.def.name.length));
    for (const a of apps) process.stdout.write(`${a.def.name.padEnd(width)}  ${a.def.description}\n`);
  },
};
