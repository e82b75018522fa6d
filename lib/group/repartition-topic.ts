/**
 * The internal topic between the two stages of a group's app (Kafka Streams' repartition topic): stage-1
 * tasks write the rows that reach a keyed or global operator into it, each row into the partition of its key
 * (the engine's key hash mod the topic's partition count), and stage-2 tasks read one partition each and run
 * the operator and what follows.
 *
 * Besides its rows, each stage-1 task writes into every partition, after each batch, a control record with its
 * event-time watermark: a stage-2 task reads rows from every upstream task, and its watermark is the minimum
 * of their latest watermarks (as Flink combines the watermarks of an operator's input channels).
 */

/** Column of every record: the stage-1 task (input partition) that wrote it. */
export const UPSTREAM_COLUMN = 'sluice_upstream';

/**
 * Column of a control record: the watermark (ms) its upstream task has reached; null in rows. A control
 * record's other columns are all null.
 */
export const UPSTREAM_WATERMARK_COLUMN = 'sluice_watermark';

/**
 * Column the stage-2 source adds to every row: the stage-2 watermark (ms) once the records up to it were
 * read, the minimum over the upstream tasks of their latest watermark; null until every upstream task has
 * published one.
 */
export const COMBINED_WATERMARK_COLUMN = 'sluice_upstream_watermark';

/**
 * The name of the repartition topic in front of operator `operator` (its name and plan id) of a group's app:
 * `<group>-<operator>-<id>-repartition`; the group id plays the part of Kafka Streams' application.id, so two
 * groups running the same app do not share it.
 */
export function repartitionTopic(group: string, operator: string, id: number): string {
  return `${group}-${operator}-${id}-repartition`.replace(/[^A-Za-z0-9._-]/g, '_');
}
