/** What a reader knows besides its spec. */
export interface ReaderContext {
  /** The batch being read (names dead-letter files so a replay replaces them). */
  batchId: number;
}
