import { SluiceError } from '../errors.js';

/**
 * The rows of a session's memory sinks, by query name (Spark's in-memory tables). Kept by the session and
 * handed to the sink factory, so a memory sink needs nothing of the api above it.
 */
export class MemoryTables {
  private readonly tables = new Map<string, Record<string, unknown>[]>();

  /** The rows the memory sink named `name` appends to (an empty table on first use). */
  sinkTable(name: string): Record<string, unknown>[] {
    let t = this.tables.get(name);
    if (!t) {
      t = [];
      this.tables.set(name, t);
    }
    return t;
  }

  /** A copy of the rows written so far to the table `name`; throws when no memory sink has that name. */
  read(name: string): Record<string, unknown>[] {
    const t = this.tables.get(name);
    if (!t) {
      throw new SluiceError(
        'NO_SUCH_TABLE',
        `no memory table named '${name}'`,
        `start a query with format('memory') and queryName('${name}') first${this.tables.size ? `; known: ${[...this.tables.keys()].join(', ')}` : ''}`,
      );
    }
    return [...t];
  }
}
