// Semantic formatting, the rules of pxq's format package (format/value.go)
// in JavaScript, so that the page shows what `pxq run` prints.

export const ST = {
  TIME_NS: 2,
  UPID: 200,
  SERVICE_NAME: 300,
  POD_NAME: 400,
  NODE_NAME: 500,
  NAMESPACE_NAME: 700,
  BYTES: 800,
  PERCENT: 900,
  DURATION_NS: 901,
  THROUGHPUT_PER_NS: 902,
  THROUGHPUT_BYTES_PER_NS: 903,
  QUANTILES: 1000,
  DURATION_NS_QUANTILES: 1001,
  SCRIPT_REFERENCE: 3000,
};

// Value kinds of decoded columns (see arrowcols.js).
export const K = { BOOL: 'bool', INT: 'int', FLOAT: 'float', STRING: 'string', TIME: 'time', UINT128: 'uint128' };

// cell formats one value v of kind kind and semantic type sem.
export function cell(v, kind, sem) {
  switch (kind) {
    case K.INT: {
      if (sem === ST.DURATION_NS) return duration(Number(v));
      if (sem === ST.BYTES) return bytes(Number(v));
      if (sem === ST.TIME_NS) return time(v);
      return String(v);
    }
    case K.FLOAT:
      switch (sem) {
        case ST.DURATION_NS: return duration(v);
        case ST.BYTES: return bytes(v);
        case ST.PERCENT: return trim3(v * 100) + '%';
        case ST.THROUGHPUT_PER_NS: return float(v * 1e9) + '/s';
        case ST.THROUGHPUT_BYTES_PER_NS: return bytes(v * 1e9) + '/s';
      }
      return float(v);
    case K.TIME: return time(v);
    case K.BOOL: return v ? 'true' : 'false';
    case K.UINT128: return v;
    case K.STRING:
      switch (sem) {
        case ST.DURATION_NS_QUANTILES: return quantiles(v, true);
        case ST.QUANTILES: return quantiles(v, false);
        case ST.SCRIPT_REFERENCE: {
          const r = scriptRef(v);
          return r && r.label ? r.label : v;
        }
      }
      return v;
  }
  return String(v);
}

// formatNumber formats a plain number by semantic type (chart axes).
export function formatNumber(v, sem) {
  if (typeof v !== 'number') return String(v);
  return cell(v, Number.isInteger(v) && sem !== ST.PERCENT ? K.INT : K.FLOAT, sem);
}

// duration: three significant digits: 850ns, 12.3µs, 45.6ms, 1.23s, 2m3s.
export function duration(ns) {
  let neg = '';
  if (ns < 0) { neg = '-'; ns = -ns; }
  if (!Number.isFinite(ns)) return float(neg ? -ns : ns);
  if (ns < 1e3) return neg + trim3(ns) + 'ns';
  if (ns < 1e6) return neg + trim3(ns / 1e3) + 'µs';
  if (ns < 1e9) return neg + trim3(ns / 1e6) + 'ms';
  if (ns < 60e9) return neg + trim3(ns / 1e9) + 's';
  // Go: time.Duration(ns).Round(time.Second).String()
  let s = Math.round(ns / 1e9);
  const hrs = Math.floor(s / 3600);
  s -= hrs * 3600;
  const min = Math.floor(s / 60);
  s -= min * 60;
  return neg + (hrs > 0 ? `${hrs}h${min}m${s}s` : `${min}m${s}s`);
}

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

// bytes: binary units: 512 B, 1.2 KiB, 3.4 MiB.
export function bytes(n) {
  if (n < 0) return '-' + bytes(-n);
  if (n < 1024) return goShortest(n) + ' B';
  for (const u of UNITS) {
    n /= 1024;
    if (n < 1024 || u === 'PiB') return trim3(n) + ' ' + u;
  }
  return '';
}

// float formats a float compactly, as format.Float.
export function float(f) {
  if (Number.isNaN(f)) return 'NaN';
  if (f === Infinity) return '+Inf';
  if (f === -Infinity) return '-Inf';
  if (f === Math.trunc(f) && Math.abs(f) < 1e15) return goShortest(f);
  const a = Math.abs(f);
  if (a >= 0.001 && a < 1e9) return trimZeros(goFixed(f, 4));
  return goG4(f);
}

// goShortest is strconv.FormatFloat(f, 'f', -1, 64) for |f| < 1e21.
function goShortest(f) {
  if (Object.is(f, -0)) return '-0';
  const s = String(f);
  if (!s.includes('e')) return s;
  // JavaScript switches to exponents for tiny numbers; Go does not.
  return f.toFixed(20).replace(/\.?0+$/, '');
}

// goG4 is strconv.FormatFloat(f, 'g', 4, 64).
function goG4(f) {
  const [m, e] = f.toExponential(3).split('e');
  const exp = Number(e);
  if (exp < -4 || exp >= 4) {
    const mant = m.includes('.') ? m.replace(/\.?0+$/, '') : m;
    const ae = Math.abs(exp);
    return mant + 'e' + (exp < 0 ? '-' : '+') + (ae < 10 ? '0' + ae : String(ae));
  }
  return trimZeros(goFixed(f, Math.max(0, 3 - exp)));
}

// goFixed is strconv.FormatFloat(x, 'f', d, 64): like toFixed, but an
// exact tie rounds to even (Go) instead of away from zero (JavaScript):
// 164.5 → "164", 12.25 → "12.2".
export function goFixed(x, d) {
  const s = x.toFixed(d);
  const longer = Math.abs(x).toFixed(d + 1);
  if (longer[longer.length - 1] !== '5' || Math.abs(x).toFixed(d + 25) !== longer + '0'.repeat(24)) return s;
  // x lies exactly halfway: keep the even neighbour.
  const down = longer.slice(0, d === 0 ? -2 : -1); // drop the 5 (and the point when d is 0)
  if (Number(down[down.length - 1]) % 2 === 0) return (x < 0 ? '-' : '') + down;
  return s;
}

function trimZeros(s) {
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

function trim3(f) {
  let s;
  if (f >= 100) s = goFixed(f, 0);
  else if (f >= 10) s = goFixed(f, 1);
  else s = goFixed(f, 2);
  return trimZeros(s);
}

// time formats ns since the epoch (a BigInt or number) in UTC with
// milliseconds: 2026-11-25 10:04:05.123.
export function time(ns) {
  const ms = typeof ns === 'bigint' ? Number(ns / 1000000n) - (ns % 1000000n < 0n ? 1 : 0) : Math.floor(ns / 1e6);
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds(), 3)}`;
}

function quantiles(s, dur) {
  let q;
  try { q = JSON.parse(s); } catch { return s; }
  if (!q || typeof q !== 'object') return s;
  const parts = [];
  for (const k of ['p50', 'p90', 'p99']) {
    if (typeof q[k] === 'number') parts.push(k + '=' + (dur ? duration(q[k]) : float(q[k])));
  }
  return parts.length ? parts.join(' ') : s;
}

// scriptRef parses a script reference cell: {"label","script","args"}.
export function scriptRef(s) {
  try {
    const r = JSON.parse(s);
    if (r && typeof r === 'object' && typeof r.script === 'string') {
      const args = {};
      for (const [k, v] of Object.entries(r.args || {})) args[k] = String(v);
      return { label: typeof r.label === 'string' ? r.label : r.script, script: r.script, args };
    }
  } catch { /* not a reference */ }
  return null;
}
