// Lives with the sinks, the lowest layer that reads it: a sink is told the query's mode when it starts, and
// the memory and directory sinks act on it. The planner and the executor, above them, import it from here.

/** Spark's output modes: append (new final rows only), update (changed rows), complete (the whole result). */
export type OutputMode = 'append' | 'update' | 'complete';
