/**
 * Notices: what a query wants its operator to know at once rather than in the next batch's progress, e.g.
 * that a source keeps retrying an unreachable broker while the query opens (before any batch, so before
 * any progress report or status a caller could poll). `sluice run` prints them; an embedding program may
 * subscribe with {@link onNotice}. Only the thread that calls `notice` reaches its listeners.
 */
type NoticeListener = (message: string) => void;

const listeners = new Set<NoticeListener>();

/** Calls `listener` with every notice from now on; returns the function that unsubscribes it. */
export function onNotice(listener: NoticeListener): () => void {
  listeners.add(listener);
  return () => {
    listeners.delete(listener);
  };
}

/** Tells every listener `message` (one line, no trailing newline). */
export function notice(message: string): void {
  for (const l of listeners) l(message);
}
