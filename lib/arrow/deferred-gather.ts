import { Data } from 'apache-arrow';

/** A variable-width column's offsets and bytes. */
export interface VarBytes {
  offsets: Int32Array;
  bytes: Uint8Array;
}

/**
 * Rows of a utf8 or binary column whose bytes are gathered only when its buffers are first read. An exchange
 * copies every row's bytes into its state partition, and a wide string column is most of a batch's bytes
 * (a bid's channel, url and extra); an operator that reads few of its rows' bytes (max_by packs only the rows
 * that win) reads them from the column they came from through {@link varBytesOf} instead, and the copy never
 * happens. Any other reader of `values` or `valueOffsets` gets the gathered column, so it sees an ordinary
 * Arrow column. Holds the source column until gathered.
 */
export class DeferredVarBytes extends Data {
  private gathered: VarBytes | null = null;

  /** Rows `rows` of `source` (not itself deferred), with the null bitmap already gathered. */
  constructor(
    readonly source: Data,
    readonly rows: Int32Array,
    nullCount: number,
    nullBitmap: Uint8Array | undefined,
  ) {
    super(source.type, 0, rows.length, nullCount, [undefined, undefined, nullBitmap] as never);
  }

  /** The rows' offsets and bytes, gathered on the first call. */
  gather(): VarBytes {
    this.gathered ??= gatherVarBytes(
      this.source.values as Uint8Array,
      this.source.valueOffsets as Int32Array,
      this.rows,
    );
    return this.gathered;
  }
}

// Accessors over the base class's buffer fields, which TypeScript declares as properties.
Object.defineProperties(DeferredVarBytes.prototype, {
  valueOffsets: {
    get(this: DeferredVarBytes) {
      return this.gather().offsets;
    },
    configurable: true,
  },
  values: {
    get(this: DeferredVarBytes) {
      return this.gather().bytes;
    },
    configurable: true,
  },
});

/**
 * A utf8 or binary column's offsets and bytes without gathering a deferred column: then those of its source,
 * with `rows` mapping each of the column's rows to the source row it is (null for an ordinary column).
 */
export function varBytesOf(data: Data): VarBytes & { rows: Int32Array | null } {
  if (data instanceof DeferredVarBytes) {
    const { source, rows } = data;
    return { offsets: source.valueOffsets as Int32Array, bytes: source.values as Uint8Array, rows };
  }
  return { offsets: data.valueOffsets as Int32Array, bytes: data.values as Uint8Array, rows: null };
}

/**
 * Gathers the variable-width values (utf8, binary) at `ids` from `src` with offsets `vo`; an id of -1 gives an
 * empty value (the caller marks it null).
 */
export function gatherVarBytes(src: Uint8Array, vo: ArrayLike<number>, ids: ArrayLike<number>): VarBytes {
  const n = ids.length;
  const offsets = new Int32Array(n + 1);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const r = ids[i];
    if (r >= 0) total += vo[r + 1] - vo[r];
    offsets[i + 1] = total;
  }
  const bytes = new Uint8Array(total);
  for (let i = 0; i < n; i++) {
    const r = ids[i];
    if (r < 0) continue;
    const s = vo[r];
    const e = vo[r + 1];
    // Short values copy faster byte by byte than through a subarray view.
    if (e - s < 16) {
      let p = offsets[i];
      for (let k = s; k < e; k++) bytes[p++] = src[k];
    } else bytes.set(src.subarray(s, e), offsets[i]);
  }
  return { offsets, bytes };
}
