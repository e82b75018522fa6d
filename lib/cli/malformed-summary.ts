/**
 * The line `sluice run` prints at the end of a run that met malformed input: how many rows, what the
 * source's mode did with them, and how to see them or change that. In PERMISSIVE mode without a
 * `_corrupt_record` column the only other trace is a null in the output, so without this line the loss
 * would go unnoticed.
 */

import { Type } from 'apache-arrow';
import { schemaFromSpec } from '../arrow/schema.js';
import type { QueryProgress } from '../exec/progress.js';
import { DEFAULT_CORRUPT_COLUMN } from '../sources/decode/common.js';
import { parseSourceUri, type SourceUri } from '../sources/source-uri.js';

/** What an input does with malformed records, read from its source URI. */
export interface MalformedPolicy {
  mode: string;
  badRecordsPath?: string;
  /** The corrupt-record column, when the input's schema has it (PERMISSIVE then keeps the text there). */
  corruptColumn?: string;
}

/** A query option, looked up case-insensitively as the sources read them. */
function option(options: Record<string, string>, name: string): string | undefined {
  const key = Object.keys(options).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : options[key];
}

/** The policy of an input URI, or null for a source that has no malformed records (rate, nexmark, text). */
export function malformedPolicyOf(uri: string): MalformedPolicy | null {
  let parsed: SourceUri;
  try {
    parsed = parseSourceUri(uri);
  } catch {
    return null;
  }
  const { format, options } = parsed;
  const dataFormat = (format === 'kafka' ? option(options, 'valueFormat') : option(options, 'format'))?.toLowerCase();
  if (format === 'rate' || format === 'nexmark' || dataFormat === 'text') return null;
  if ((format === 'socket' || format === 'kafka') && dataFormat !== 'json') return null;
  const badRecordsPath = option(options, 'badRecordsPath');
  const corruptColumn = corruptColumnOf(
    option(options, 'schema'),
    option(options, 'columnNameOfCorruptRecord') ?? DEFAULT_CORRUPT_COLUMN,
  );
  return {
    mode: (option(options, 'mode') ?? 'PERMISSIVE').toUpperCase(),
    ...(badRecordsPath ? { badRecordsPath } : {}),
    ...(corruptColumn ? { corruptColumn } : {}),
  };
}

/** `name` when the schema option (DDL or a JSON spec) declares it as a string column. */
function corruptColumnOf(schema: string | undefined, name: string): string | undefined {
  if (schema === undefined) return undefined;
  try {
    const fields = schemaFromSpec(schema.trim().startsWith('{') ? JSON.parse(schema) : schema).fields;
    return fields.some((f) => f.name === name && f.type.typeId === Type.Utf8) ? name : undefined;
  } catch {
    // The source itself reports a bad schema; this line only words its hint.
    return undefined;
  }
}

function rows(n: number): string {
  return `${n} malformed input row${n === 1 ? '' : 's'}`;
}

/**
 * Counts malformed rows per source over a run. Queries of one app that read the same input each count
 * its rows, so a source's count is the largest any query saw, not their sum.
 */
export class MalformedTally {
  private readonly bySource = new Map<string, Map<string, number>>();

  add(output: string, p: QueryProgress): void {
    for (const s of p.sources) {
      if (!s.numMalformedRows) continue;
      let perOutput = this.bySource.get(s.description);
      if (!perOutput) {
        perOutput = new Map();
        this.bySource.set(s.description, perOutput);
      }
      perOutput.set(output, (perOutput.get(output) ?? 0) + s.numMalformedRows);
    }
  }

  get total(): number {
    let n = 0;
    for (const perOutput of this.bySource.values()) n += Math.max(...perOutput.values());
    return n;
  }

  /** The end-of-run line for an app whose inputs read `inputs` (name to URI), or null when no row was malformed. */
  summary(inputs: Readonly<Record<string, string>>): string | null {
    const n = this.total;
    if (n === 0) return null;
    const policies = Object.entries(inputs).flatMap(([name, uri]) => {
      const p = malformedPolicyOf(uri);
      return p ? [{ name, ...p }] : [];
    });
    const distinct = new Set(policies.map((p) => `${p.mode} ${p.badRecordsPath ?? ''} ${p.corruptColumn ?? ''}`));
    const p = distinct.size === 1 ? policies[0] : undefined;
    if (p?.badRecordsPath) {
      return (
        `sluice: ${rows(n)} set aside in badRecordsPath ${p.badRecordsPath} (a file per batch, with the line and the reason); ` +
        'add ?mode=FAILFAST to the source to stop at the first instead'
      );
    }
    if (p?.mode === 'DROPMALFORMED') {
      return (
        `sluice: ${rows(n)} dropped (mode DROPMALFORMED); add ?badRecordsPath=DIR to the source to keep them with the reason, ` +
        'or ?mode=FAILFAST to stop at the first'
      );
    }
    if (p?.mode === 'PERMISSIVE' && p.corruptColumn) {
      return (
        `sluice: ${rows(n)} kept with null for the values that did not convert and their text in ${p.corruptColumn} ` +
        '(mode PERMISSIVE); add ?badRecordsPath=DIR to the source to set them aside with the reason instead, ' +
        '?mode=DROPMALFORMED to drop them or ?mode=FAILFAST to stop at the first'
      );
    }
    if (p?.mode === 'PERMISSIVE') {
      return (
        `sluice: ${rows(n)} kept with null for the values that did not convert (mode PERMISSIVE); to see them add ` +
        '?badRecordsPath=DIR to the source (keeps them with the reason) or a _corrupt_record STRING column to the schema ' +
        '(keeps their text), or add ?mode=DROPMALFORMED to drop them or ?mode=FAILFAST to stop at the first'
      );
    }
    const modes = policies.map(
      (q) => `input ${q.name}: mode ${q.mode}${q.badRecordsPath ? `, badRecordsPath ${q.badRecordsPath}` : ''}`,
    );
    return (
      `sluice: ${rows(n)}${modes.length ? ` (${modes.join('; ')})` : ''}; ?badRecordsPath=DIR keeps them with the reason, ` +
      '?mode=DROPMALFORMED drops them, ?mode=FAILFAST stops at the first'
    );
  }
}
