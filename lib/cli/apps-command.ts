import type { CommandModule } from 'yargs';
import { listApps } from '../app/app-runner.js';

/** `sluice apps`: one line per built-in app. */
export const appsCommandModule: CommandModule = {
  command: 'apps',
  describe: 'List the built-in apps',
  builder: (y) =>
    y
      .strict()
      .example('$0 apps', 'one line per app: its name and what it does')
      .example('$0 run deposit-sessions --source file:data/deposits --trigger available-now', 'then run one'),
  handler: async () => {
    const apps = await listApps();
    const width = Math.max(0, ...apps.map((a) => a.def.name.length));
    for (const a of apps) process.stdout.write(`${a.def.name.padEnd(width)}  ${a.def.description}\n`);
  },
};
