import { SluiceError } from '../errors.js';
import { type ForeachBatchFunction, ForeachBatchSink, NoopSink } from './foreach-batch-sink.js';
import { MemorySink } from './memory-sink.js';
import type { MemoryTables } from './memory-tables.js';
import type { StreamSink } from './sink.js';

export type { ForeachBatchFunction };

/** Sink formats by name, for messages. */
export const SINK_FORMATS = ['console', 'memory', 'file', 'parquet', 'kafka', 'noop', 'foreachBatch'] as const;

/** Formats whose output outlives the process: they need a checkpoint to be exactly-once. */
export function sinkNeedsCheckpoint(format: string): boolean {
  return format === 'file' || format === 'parquet' || format === 'kafka' || format === 'json' || format === 'csv';
}

/** What a sink may need from the query that writes to it. */
export interface SinkEnv {
  /** Where a memory sink keeps its rows: the session's tables. */
  memoryTables: MemoryTables;
  queryName?: string;
  foreachBatch?: ForeachBatchFunction;
}

/**
 * Builds the sink for a format and its options. Heavy sinks (Parquet's wasm writer, the Kafka client) are
 * loaded only when used.
 */
export async function createSink(format: string, options: Record<string, string>, env: SinkEnv): Promise<StreamSink> {
  const {
    checkpointLocation: _c,
    multipleWatermarkPolicy: _m,
    stateStore: _s,
    stateCacheMb: _sc,
    stateLocalDir: _sl,
    stateMaxEvictionsPerBatch: _se,
    ...own
  } = options;
  switch (format) {
    case 'console': {
      const { ConsoleSink } = await import('./console-sink.js');
      return new ConsoleSink(own);
    }
    case 'memory': {
      const name = env.queryName ?? own.path;
      if (!name)
        throw new SluiceError(
          'BAD_OPTION',
          'the memory sink needs a name',
          ".queryName('name') on the writer, or memory:NAME as the sink URI",
        );
      return new MemorySink(name, env.memoryTables.sinkTable(name));
    }
    case 'file':
    case 'json':
    case 'csv': {
      const { FileSink } = await import('./file-sink.js');
      return new FileSink(format === 'csv' ? { format: 'csv', ...own } : own);
    }
    case 'parquet': {
      const { ParquetSink } = await import('./parquet-sink.js');
      return new ParquetSink(own);
    }
    case 'kafka': {
      const { KafkaSink } = await import('./kafka-sink.js');
      return new KafkaSink(own);
    }
    case 'noop':
      return new NoopSink();
    case 'foreachBatch':
      if (!env.foreachBatch)
        throw new SluiceError(
          'BAD_OPTION',
          'the foreachBatch sink needs a function',
          'call .foreachBatch((rows, batchId) => ...) on the writer',
        );
      return new ForeachBatchSink(env.foreachBatch);
    default:
      throw new SluiceError(
        'UNKNOWN_SINK',
        `unknown sink format '${format}'`,
        `use one of: ${SINK_FORMATS.join(', ')}`,
      );
  }
}

/**
 * Splits a sink URI into format and options: `console:?numRows=5`, `file:out/dir?format=csv`,
 * `parquet:out/dir?partitionBy=date`, `kafka://host:9092/topic`, `memory:name`, `noop:`.
 */
export function parseSinkUri(uri: string): { format: string; options: Record<string, string> } {
  const m = /^([A-Za-z]+):(.*)$/.exec(uri);
  if (!m) {
    throw new SluiceError(
      'BAD_URI',
      `cannot read sink '${uri}'`,
      'write FORMAT:PATH?option=value, e.g. console:, file:out/dir, parquet:out/dir, kafka://localhost:9092/topic, memory:name',
    );
  }
  const format = m[1];
  let rest = m[2];
  const q = rest.indexOf('?');
  const options: Record<string, string> = {};
  if (q >= 0) {
    for (const [k, v] of new URLSearchParams(rest.slice(q + 1))) options[k] = v;
    rest = rest.slice(0, q);
  }
  if (format === 'kafka') {
    const km = /^\/\/([^/]+)\/(.+)$/.exec(rest);
    if (!km) throw new SluiceError('BAD_URI', `cannot read Kafka sink '${uri}'`, 'write kafka://HOST:PORT/TOPIC');
    options['kafka.bootstrap.servers'] = km[1];
    options.topic = km[2];
  } else if (rest !== '') {
    options.path = rest;
  }
  if (!(SINK_FORMATS as readonly string[]).includes(format) && format !== 'json' && format !== 'csv') {
    throw new SluiceError(
      'UNKNOWN_SINK',
      `unknown sink format '${format}' in '${uri}'`,
      `use one of: ${SINK_FORMATS.filter((f) => f !== 'foreachBatch').join(', ')}`,
    );
  }
  return { format, options };
}
