/**
 * The registry of read-task readers. A ReadTask names its reader and carries a JSON spec, so the same task
 * runs in the driver or in a worker thread: both import this module and find the function by name. It is
 * a static table (not registration at run time) because a worker only has what its imports give it.
 */
import { readFileTask } from './file-source.js';
import { readNexmarkTask } from './nexmark-source.js';
import { readRateTask } from './rate-source.js';
import type { ReaderContext } from './reader-context.js';
import { readSocketLogTask } from './socket-source.js';
import type { ReadResult, ReadTask } from './source.js';

/** A reader: runs one task's spec. */
export type Reader = (spec: unknown, ctx: ReaderContext) => Promise<ReadResult>;

/** Readers by name: `file`, `socket`, `rate`, `nexmark`, `kafka` (loaded on first use: it brings the Kafka client). */
export const readers: Record<string, Reader> = {
  file: readFileTask,
  socket: readSocketLogTask,
  rate: readRateTask,
  nexmark: readNexmarkTask,
  kafka: async (spec, ctx) => (await import('./kafka/kafka-read-task.js')).readKafkaTask(spec, ctx),
};

/** Runs a read task: its reader on its spec, or the batches it already holds. */
export async function runReadTask(task: ReadTask, ctx: ReaderContext): Promise<ReadResult> {
  if (task.batches) return { batches: task.batches, numMalformed: 0 };
  const reader = readers[task.reader];
  if (!reader) {
    throw new Error(
      `no reader named '${task.reader}' (known: ${Object.keys(readers).join(', ')}); ` +
        'a source planned a task that lib/sources/readers.ts does not list',
    );
  }
  return reader(task.spec, ctx);
}
