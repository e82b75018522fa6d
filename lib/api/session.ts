import { DataFrameReader } from './data-frame-reader.js';
import { type SessionOptions, SessionState } from './session-state.js';
import { DataStreamReader } from './stream-reader.js';

/**
 * The entry point, like SparkSession: `Session.local({ threads: 2 })`. Builds streams with `readStream`
 * and tracks running queries in `streams`.
 */
export class Session extends SessionState {
  /** A session on this machine (Spark's `local[threads]`). */
  static local(opts: SessionOptions = {}): Session {
    return new Session(opts);
  }

  /** Starts describing a streaming source. */
  get readStream(): DataStreamReader {
    return new DataStreamReader(this);
  }

  /** Starts describing a static (batch) read, e.g. `read.json(path)`: the static side of a stream-static join. */
  get read(): DataFrameReader {
    return new DataFrameReader(this);
  }

  /**
   * Stops every query of the session, as Spark's `spark.stop()` does: each finishes the batch in progress
   * (see StreamingQuery.stop) and closes its sources, sink and worker threads. Resolves once all are
   * stopped; with nothing else left to do, the Node process can then exit.
   */
  async stop(): Promise<void> {
    await Promise.all(this.streams.active.map((q) => q.stop()));
  }

  /** Rows written so far by the query whose memory sink is named `name` (Spark's `spark.table(name)`). */
  table(name: string): Record<string, unknown>[] {
    return this.memoryTables.read(name);
  }
}
