/**
 * `<checkpoint>/app`: which app an app's checkpoint directory belongs to. An app runs one query per
 * output in `<checkpoint>/<output>/`, and each query's own checkpoint only knows its settings, so without
 * this record a second app given the same directory (or one query's sub-directory) would silently start
 * its queries beside, or inside, the first app's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isRecord } from '../checkpoint/fields.js';
import { metadataPath } from '../checkpoint/metadata.js';
import { readVersioned, writeVersioned } from '../checkpoint/versioned-file.js';
import { pathError, SluiceError } from '../errors.js';
import { createDirectory } from '../util/create-directory.js';

/** The file in an app's checkpoint directory that names the app. */
export const APP_MARKER = 'app';

interface AppMarker {
  app: string;
}

function validateMarker(body: unknown): string | null {
  return isRecord(body) && typeof body.app === 'string' && body.app !== ''
    ? null
    : 'field "app" must be a non-empty string';
}

function otherApp(message: string, app: string): SluiceError {
  return new SluiceError(
    'CHECKPOINT_OTHER_APP',
    message,
    `give ${app} its own --checkpoint directory (the default is checkpoints/${app}), or delete that one to start it over`,
  );
}

/**
 * Checks that `dir` is free or already this app's checkpoint, and records the app in it. A directory
 * without the record (made before it existed) is accepted when every query found in it is one of the
 * app's outputs.
 */
export async function claimAppCheckpoint(dir: string, app: string, outputs: string[]): Promise<void> {
  const marker = path.join(dir, APP_MARKER);
  if (fs.existsSync(marker)) {
    const { app: owner } = await readVersioned<AppMarker>(marker, validateMarker);
    if (owner !== app) throw otherApp(`checkpoint ${dir} belongs to app ${owner}, not ${app}`, app);
    return;
  }
  if (fs.existsSync(dir)) {
    if (!fs.statSync(dir).isDirectory()) {
      throw new SluiceError(
        'CHECKPOINT_LOCATION',
        `checkpoint location ${dir} is not a directory`,
        'give --checkpoint a directory path (it is created if missing)',
      );
    }
    if (fs.existsSync(metadataPath(dir))) {
      throw otherApp(
        `checkpoint ${dir} is the checkpoint of one query (it has a metadata file), not of an app: perhaps one output's directory inside another app's checkpoint`,
        app,
      );
    }
    const foreign = fs
      .readdirSync(dir, { withFileTypes: true })
      .filter(
        (e) => e.isDirectory() && fs.existsSync(metadataPath(path.join(dir, e.name))) && !outputs.includes(e.name),
      )
      .map((e) => e.name);
    if (foreign.length > 0) {
      throw otherApp(
        `checkpoint ${dir} holds queries ${foreign.join(', ')}, which are not outputs of app ${app} (its outputs: ${outputs.join(', ')})`,
        app,
      );
    }
  }
  try {
    await createDirectory(dir);
    await writeVersioned(marker, { app } satisfies AppMarker);
  } catch (err) {
    throw pathError(err, `the checkpoint directory ${dir}`, 'create');
  }
}
