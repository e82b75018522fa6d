/** Loading a codec's library on first use. */
import { createRequire } from 'node:module';
import { SluiceError } from '../../../errors.js';

const require = createRequire(import.meta.url);

/**
 * A function that loads package `pkg` the first time it is called. Native codec packages ship their binaries
 * as per-platform optional dependencies; on a platform without one, only the codec that needs it fails,
 * with an error that names it.
 */
export function lazyLibrary<T>(codec: string, pkg: string): () => T {
  let lib: T | undefined;
  return () => {
    if (lib === undefined) {
      try {
        lib = require(pkg) as T;
      } catch (err) {
        throw new SluiceError(
          'KAFKA_CODEC_UNAVAILABLE',
          `the Kafka ${codec} codec cannot be loaded: package ${pkg} failed to load (${(err as Error).message.split('\n')[0]})`,
          `reinstall sluice with npm ci; ${pkg} ships binaries for Linux, macOS and Windows on x64 and arm64 only`,
          { cause: err },
        );
      }
    }
    return lib;
  };
}
