/**
 * Waits for writes running side by side, as Promise.all does, but settles only once every one of them has:
 * when one fails, the others still write into the checkpoint or a sink, and whoever handles the failure
 * (stopping the query, exiting) must not act before they are over. Throws the first failure, in the order given.
 */
export async function settleAll(promises: Iterable<Promise<unknown> | null | undefined>): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
