import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { pathError, UsageError } from '../errors.js';
import { packagePath, packageRoot } from '../util/package-root.js';

interface NewArgs {
  dir: string;
  sluice?: string;
}

/** The project `sluice new` writes, as it ships in the package. */
const TEMPLATE_DIR = packagePath('templates', 'app');

/** npm leaves every `.gitignore` out of a package, so the template carries it under another name. */
const SHIPPED_AS: Record<string, string> = { gitignore: '.gitignore' };

/** What `sluice new` wrote. */
export interface NewProject {
  /** The project directory, absolute. */
  dir: string;
  /** Its package name. */
  name: string;
  /** How its package.json depends on sluice, e.g. `file:../sluice-0.1.0.tgz` or `^0.1.0`. */
  sluice: string;
}

/** A valid npm package name made from a directory name. */
function packageNameOf(dir: string): string {
  const name = path
    .basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9._~-]+/g, '-')
    .replace(/^[._-]+/, '');
  return name || 'sluice-app';
}

/** A dependency specifier npm reads as a local path (a tarball or a folder), as an absolute path. */
function localPathOf(specifier: string, base: string): string | undefined {
  const p = specifier.startsWith('file:') ? specifier.slice('file:'.length) : specifier;
  if (p !== specifier || /^\.{1,2}[\\/]|^\//.test(p)) return path.resolve(base, p);
  return undefined;
}

/** `file:` and a path from `from` to `to`, with forward slashes as package.json files carry them. */
function fileSpecifier(from: string, to: string): string {
  return `file:${path.relative(from, to).split(path.sep).join('/')}`;
}

/** How the project around this installation declared sluice in its package.json, if it did. */
function declaredByHost(hostDir: string): string | undefined {
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(hostDir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      devDependencies?: Record<string, string>;
    };
    return manifest.dependencies?.sluice ?? manifest.devDependencies?.sluice;
  } catch {
    return undefined;
  }
}

/**
 * How a new project in `projectDir` depends on sluice: the way the project that installed this sluice
 * declared it (a tarball or folder path is rewritten relative to the new project), the checkout this runs
 * from, or else this version from the registry.
 * @param root the sluice package to depend on; by default the one running
 */
export function sluiceSpecifier(projectDir: string, root = packageRoot()): string {
  if (path.basename(path.dirname(root)) !== 'node_modules') return fileSpecifier(projectDir, root);
  const host = path.dirname(path.dirname(root));
  const declared = declaredByHost(host);
  if (declared === undefined) {
    const { version } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
    return `^${version}`;
  }
  const local = localPathOf(declared, host);
  return local === undefined ? declared : fileSpecifier(projectDir, local);
}

/** Copies the template into `dir`, naming the project after it; returns the files written, relative. */
function copyTemplate(from: string, to: string, name: string, relative = ''): string[] {
  const written: string[] = [];
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const targetName = SHIPPED_AS[entry.name] ?? entry.name;
    const target = path.join(to, targetName);
    if (entry.isDirectory()) {
      fs.mkdirSync(target);
      written.push(...copyTemplate(source, target, name, path.join(relative, targetName)));
    } else {
      fs.writeFileSync(target, fs.readFileSync(source, 'utf8').replaceAll('{{name}}', name));
      written.push(path.join(relative, targetName));
    }
  }
  return written;
}

/**
 * Writes a ready app project into `dir` (created when missing; an existing directory must be empty): an
 * app module, its test, sample data, package.json, tsconfig.json and a README with the commands to run.
 * @param options.sluice how the project depends on sluice (a path is taken from the current directory); by
 *   default {@link sluiceSpecifier}.
 */
export function newProject(dir: string, options: { sluice?: string } = {}): NewProject {
  const abs = path.resolve(dir);
  if (fs.existsSync(abs)) {
    if (!fs.statSync(abs).isDirectory())
      throw new UsageError('PROJECT_DIR_TAKEN', `${dir} exists and is not a directory`, 'give a new directory');
    const entries = fs.readdirSync(abs);
    if (entries.length > 0)
      throw new UsageError(
        'PROJECT_DIR_NOT_EMPTY',
        `${dir} is not empty (${entries.length} ${entries.length === 1 ? 'entry' : 'entries'})`,
        'give a new or empty directory, e.g. sluice new my-app',
      );
  }
  const name = packageNameOf(abs);
  const given = options.sluice === undefined ? undefined : localPathOf(options.sluice, process.cwd());
  const sluice =
    options.sluice === undefined
      ? sluiceSpecifier(abs)
      : given === undefined
        ? options.sluice
        : fileSpecifier(abs, given);
  try {
    fs.mkdirSync(abs, { recursive: true });
    copyTemplate(TEMPLATE_DIR, abs, name);
    const manifestFile = path.join(abs, 'package.json');
    const { devDependencies, ...manifest } = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as Record<
      string,
      unknown
    >;
    const written = { ...manifest, name, dependencies: { sluice }, devDependencies };
    fs.writeFileSync(manifestFile, `${JSON.stringify(written, null, 2)}\n`);
  } catch (err) {
    throw pathError(err, `the project directory ${dir}`, 'create');
  }
  return { dir: abs, name, sluice };
}

/** `sluice new <dir>`. */
export const newCommandModule: CommandModule<object, NewArgs> = {
  command: 'new <dir>',
  describe: 'Start a project of your own: an app, its test, sample data and a README, ready to build and run',
  builder: (y: Argv) =>
    y
      .positional('dir', {
        type: 'string',
        describe: 'the project directory to create (or an empty one); it names the project',
        demandOption: true,
      })
      .option('sluice', {
        type: 'string',
        requiresArg: true,
        describe:
          'how the project depends on sluice: a version or a path to a tarball (default: the way this sluice was installed)',
      })
      .strict()
      .example('$0 new my-app', 'then: cd my-app && npm install && npm run build && npm test && npm start')
      .example('$0 new my-app --sluice ../sluice-0.1.0.tgz', 'depend on this tarball') as unknown as Argv<NewArgs>,
  handler: (argv: ArgumentsCamelCase<NewArgs>) => {
    const project = newProject(argv.dir, { sluice: argv.sluice });
    process.stdout.write(
      `sluice: created ${project.name} in ${argv.dir}, depending on sluice ${project.sluice}\n` +
        `next:\n  cd ${argv.dir}\n  npm install && npm run build && npm test\n  npm start\n`,
    );
  },
};
