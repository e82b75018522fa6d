#!/bin/sh
//usr/bin/env true; exec env GLIBC_TUNABLES="glibc.malloc.hugetlb=1${GLIBC_TUNABLES:+:$GLIBC_TUNABLES}" node "$0" "$@"
/*
 * The `sluice` command is a shell script and this module at once: the shell runs the line above, which execs Node
 * on this file (the same process) in the environment launch-environment.ts describes and says why; to Node that
 * line is a comment.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { type LoadedApp, loadApp } from '../app/app-runner.js';
import { describeError, SluiceError, UsageError } from '../errors.js';
import { appsCommandModule } from './apps-command.js';
import { checkpointCommandModule } from './checkpoint-command.js';
import { genCommand } from './gen-command.js';
import { groupCommandModule } from './group-command.js';
import { newCommandModule } from './new-command.js';
import { runCommandModule } from './run-command.js';

/** Prints a user error on one line (no stack trace) and exits non-zero; bugs keep their stack. */
function fail(err: unknown): never {
  if (err instanceof SluiceError) {
    process.stderr.write(`sluice: error: ${describeError(err)}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  }
  process.stderr.write(`sluice: internal error (please report): ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(70);
}

/**
 * The app `sluice run <app>` names, loaded before the command line is parsed so that its own options are
 * declared (listed by --help); undefined when it does not load, which the run command then reports.
 */
async function appOfRun(args: string[]): Promise<LoadedApp | undefined> {
  const [command, ref] = args;
  if (command !== 'run' || ref === undefined || ref.startsWith('-')) return undefined;
  try {
    return await loadApp(ref);
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const args = hideBin(process.argv);
  const commands = [
    runCommandModule(await appOfRun(args)),
    appsCommandModule,
    genCommand,
    checkpointCommandModule,
    groupCommandModule,
    newCommandModule,
  ];
  let cli = yargs(args)
    .scriptName('sluice')
    .usage('$0 <command> [options]\n\nSpark-style micro-batch structured streaming for Node.js')
    .demandCommand(1, 'give a command: run, apps, gen, checkpoint, new (see --help)')
    .recommendCommands()
    .strictCommands()
    .example('$0 apps', 'list the built-in apps')
    .example(
      '$0 run deposit-sessions --source file:data/deposits --trigger available-now',
      'run an app over sample data',
    )
    .example('$0 checkpoint checkpoints/deposit-sessions', 'see what a query has done')
    .example('$0 new my-app', 'start a project of your own')
    .example('$0 <command> --help', 'the options and examples of a command')
    .help()
    .version()
    .fail((msg, err) => {
      // yargs' own validation errors (a flag without its value) are usage errors, not bugs.
      if (err && err.name !== 'YError') fail(err);
      process.stderr.write(`sluice: error: ${msg}\nRun 'sluice --help' for usage.\n`);
      process.exit(2);
    });
  for (const c of commands) cli = cli.command(c as never);
  cli = cli.wrap(Math.min(110, cli.terminalWidth()));
  await cli.parseAsync();
}

main().catch(fail);
