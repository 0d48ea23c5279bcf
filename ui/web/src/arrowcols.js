// Decoding a table's record batches into plain columns: typed arrays for
// numbers, arrays of strings, and the column's kind and semantic type.
import { Type } from 'apache-arrow';
import { K, ST } from './format.js';

export function columnsOf(schema) {
  return schema.fields.map((f) => {
    let sem = Number(f.metadata.get('pxq.semantic') || 0);
    const kind = kindOf(f.type);
    if (kind === K.TIME && !sem) sem = ST.TIME_NS;
    return { name: f.name, kind, sem };
  });
}

function kindOf(t) {
  switch (t.typeId) {
    case Type.Bool: return K.BOOL;
    case Type.Int: return K.INT;
    case Type.Float: return K.FLOAT;
    case Type.Utf8: case Type.LargeUtf8: return K.STRING;
    case Type.Timestamp: return K.TIME;
    case Type.FixedSizeBinary: return K.UINT128;
  }
  return K.STRING;
}

// decode turns batches into {cols, values, rows}: values[i] holds
// column i's rows (BigInt64Array for ints and times, Float64Array,
// arrays of strings and booleans).
export function decode(cols, batches) {
  let rows = 0;
  for (const b of batches) rows += b.numRows;
  const values = cols.map((c) => alloc(c.kind, rows));
  let off = 0;
  for (const b of batches) {
    cols.forEach((c, i) => fill(c.kind, b.getChildAt(i), values[i], off));
    off += b.numRows;
  }
  return { cols, values, rows };
}

function alloc(kind, n) {
  switch (kind) {
    case K.INT: case K.TIME: return new BigInt64Array(n);
    case K.FLOAT: return new Float64Array(n);
  }
  return new Array(n);
}

function fill(kind, vec, out, off) {
  if (kind === K.STRING || kind === K.BOOL) {
    let i = off;
    for (const x of vec) out[i++] = kind === K.BOOL ? Boolean(x) : (x === null ? '' : String(x));
    return;
  }
  for (const data of vec.data) {
    const n = data.length;
    const v = data.values;
    switch (kind) {
      case K.INT: case K.TIME:
        if (data.type.bitWidth === 32 || data.type.bitWidth === 16 || data.type.bitWidth === 8) {
          for (let i = 0; i < n; i++) out[off + i] = BigInt(v[data.offset + i]);
        } else {
          // 64-bit values: read the raw buffer, not get() (which may round).
          const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
          for (let i = 0; i < n; i++) out[off + i] = dv.getBigInt64((data.offset + i) * 8, true);
        }
        break;
      case K.FLOAT:
        for (let i = 0; i < n; i++) out[off + i] = Number(v[data.offset + i]);
        break;
      case K.UINT128: {
        const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
        for (let i = 0; i < n; i++) {
          const p = (data.offset + i) * 16;
          const hi = dv.getBigUint64(p, true);
          const lo = dv.getBigUint64(p + 8, true);
          out[off + i] = `${hi >> 32n}:${hi & 0xffffffffn}:${lo}`;
        }
        break;
      }
    }
    off += n;
  }
}
