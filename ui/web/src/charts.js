// Charts: TimeseriesChart, BarChart and HistogramChart as Vega-Lite
// specs. Vega is loaded on first use (a chunk of its own), so pages with
// only tables never fetch it. Column values go into data objects under
// fixed keys (c0, c1, …): column names never become field expressions.
import { K, formatNumber, scriptRef, ST } from './format.js';

let vegaPromise = null;

function loadVega() {
  if (!vegaPromise) {
    vegaPromise = Promise.all([import('vega-embed'), import('vega'), import('vega-interpreter')]).then(([embed, vega, interp]) => {
      vega.expressionFunction('pxqfmt', (v, sem) => formatNumber(v, sem));
      return { embed: embed.default, interpreter: interp.expressionInterpreter };
    });
  }
  return vegaPromise;
}

function colIndex(t, name) {
  const i = t.cols.findIndex((c) => c.name === name);
  if (i < 0) throw new Error(`column ${JSON.stringify(name)} is not in the output (it has ${t.cols.map((c) => c.name).join(', ')})`);
  return i;
}

// plain returns a JS value for charts: numbers for numbers and times (ms),
// labels for strings.
function plain(t, c, r) {
  const col = t.cols[c];
  const v = t.values[c][r];
  switch (col.kind) {
    case K.INT: return Number(v);
    case K.TIME: return Number(v / 1000000n);
    case K.FLOAT: return v;
    case K.STRING: {
      if (col.sem === ST.SCRIPT_REFERENCE) { const ref = scriptRef(v); if (ref) return ref.label; }
      return v;
    }
  }
  return String(v);
}

function rowsOf(t, idx) {
  const out = new Array(t.rows);
  for (let r = 0; r < t.rows; r++) {
    const o = {};
    idx.forEach((c, k) => { o['c' + k] = plain(t, c, r); });
    out[r] = o;
  }
  return out;
}

function axisFor(t, c) {
  const col = t.cols[c];
  const a = { title: col.name };
  if ([ST.DURATION_NS, ST.BYTES, ST.PERCENT, ST.THROUGHPUT_PER_NS, ST.THROUGHPUT_BYTES_PER_NS].includes(col.sem)) {
    a.labelExpr = `pxqfmt(datum.value, ${col.sem})`;
  }
  return a;
}

export function dark() {
  return typeof matchMedia === 'function' && matchMedia('(prefers-color-scheme: dark)').matches;
}

// base is what every chart spec starts from, in the page's colours.
function base() {
  const ink = dark() ? '#c9d1e0' : '#1d2330';
  const grid = dark() ? '#343b4a' : '#e3e6ec';
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 'container',
    height: 'container',
    autosize: { type: 'fit', contains: 'padding' },
    background: null,
    config: {
      view: { stroke: null },
      axis: { labelFontSize: 11, titleFontSize: 11, labelColor: ink, titleColor: ink, gridColor: grid, domainColor: grid, tickColor: grid },
      legend: { labelLimit: 220, labelColor: ink, titleColor: ink },
    },
  };
}

// Steps for time axes, shortest first: [interval, step, ms, d3 format].
const TIME_STEPS = [
  ['milliseconds', 100, 100, '%H:%M:%S.%L'], ['milliseconds', 200, 200, '%H:%M:%S.%L'], ['milliseconds', 500, 500, '%H:%M:%S.%L'],
  ['seconds', 1, 1e3, '%H:%M:%S'], ['seconds', 2, 2e3, '%H:%M:%S'], ['seconds', 5, 5e3, '%H:%M:%S'], ['seconds', 10, 1e4, '%H:%M:%S'],
  ['seconds', 15, 15e3, '%H:%M:%S'], ['seconds', 30, 3e4, '%H:%M:%S'], ['minutes', 1, 6e4, '%H:%M'], ['minutes', 2, 12e4, '%H:%M'],
  ['minutes', 5, 3e5, '%H:%M'], ['minutes', 10, 6e5, '%H:%M'], ['minutes', 15, 9e5, '%H:%M'], ['minutes', 30, 18e5, '%H:%M'],
  ['hours', 1, 36e5, '%H:%M'], ['hours', 2, 72e5, '%H:%M'], ['hours', 3, 108e5, '%H:%M'], ['hours', 6, 216e5, '%b %d %H:%M'],
  ['hours', 12, 432e5, '%b %d %H:%M'], ['day', 1, 864e5, '%b %d'], ['day', 7, 6048e5, '%b %d'],
];

// timeTicks picks a clock step for a span of ms that gives at most
// about `most` ticks, and the format of its labels: whole seconds,
// minutes or hours, never Vega's bare ".500" for sub-second ticks.
export function timeTicks(spanMs, most = 7) {
  for (const st of TIME_STEPS) if (spanMs / st[2] <= most) return { interval: st[0], step: st[1], ms: st[2], format: st[3] };
  const last = TIME_STEPS[TIME_STEPS.length - 1];
  return { interval: last[0], step: Math.ceil(spanMs / last[2] / most) * last[1], ms: 0, format: last[3] };
}

// timeseriesSpec: ds.timeseries = [{value, series, stackBySeries, mode}].
// width (px, when known) bounds the number of time ticks so that their
// labels fit.
export function timeseriesSpec(t, ds, width) {
  const tcol = t.cols.findIndex((c) => c.name === 'time_') >= 0 ? colIndex(t, 'time_') : t.cols.findIndex((c) => c.kind === K.TIME);
  if (tcol < 0) throw new Error('a time series needs a time column (time_)');
  const entries = ds.timeseries || [];
  if (!entries.length) throw new Error('the TimeseriesChart spec lists no timeseries');
  const idx = [tcol];
  const key = (c) => { let k = idx.indexOf(c); if (k < 0) { idx.push(c); k = idx.length - 1; } return 'c' + k; };
  const lines = [];
  const layer = entries.map((e) => {
    const v = colIndex(t, e.value);
    const vk = key(v);
    const stacked = !!e.stackBySeries && !!e.series;
    let mark = { MODE_POINT: 'point', MODE_BAR: 'bar', MODE_AREA: 'area' }[e.mode] || 'line';
    if (stacked && mark === 'line') mark = 'area';
    const enc = {
      x: { field: 'c0', type: 'temporal', title: null }, // made quantitative below, with its ticks
      y: { field: vk, type: 'quantitative', axis: axisFor(t, v), stack: stacked ? 'zero' : null, ...(stacked ? { impute: { value: 0 } } : {}) },
      tooltip: [{ field: 'c0', type: 'temporal', title: 'time', format: '%H:%M:%S' }, { field: vk, type: 'quantitative', title: e.value }],
    };
    if (e.series) {
      const sk = key(colIndex(t, e.series));
      enc.color = { field: sk, type: 'nominal', title: e.series };
      enc.tooltip.push({ field: sk, type: 'nominal', title: e.series });
    } else if (entries.length > 1) {
      enc.color = { datum: e.value, type: 'nominal' };
    }
    if (mark === 'line') lines.push(enc);
    return { mark: { type: mark, tooltip: true, ...(mark === 'line' ? { strokeWidth: 1.5 } : {}), ...(mark === 'area' ? { opacity: 0.7, line: true } : {}) }, encoding: enc };
  });
  if (ds.yAxis && ds.yAxis.label) layer[0].encoding.y.axis.title = ds.yAxis.label;
  const values = rowsOf(t, idx);
  const seriesKeys = idx.map((c, k) => (t.cols[c].kind === K.STRING ? 'c' + k : null)).filter(Boolean);
  const padded = padSingles(values, seriesKeys);
  // Few points: mark them on their lines (not the padding of padSingles).
  if (t.rows <= 60) {
    for (const enc of lines) layer.push({ transform: [{ filter: '!datum.pad' }], mark: { type: 'point', filled: true, size: 28, tooltip: true }, encoding: enc });
  }
  const times = padded.map((o) => o.c0);
  const lo = Math.min(...times), hi = Math.max(...times);
  // Labels are about 6.5 px a character, plus a gap; the y axis takes
  // some 60 px and a legend (series, or several values) about 190.
  const legend = entries.some((e) => e.series) || entries.length > 1 ? 190 : 0;
  const room = (fmt) => Math.max(2, Math.floor(((width || 600) - 60 - legend) / (fmt.replace(/%./g, 'xx').length * 6.5 + 16)));
  let tk = timeTicks(hi - lo, room('%H:%M:%S'));
  if (tk.format.length > 8) tk = timeTicks(hi - lo, room(tk.format));
  // Time is a quantitative scale of ms with our own ticks and labels:
  // Vega keys a time axis's ticks by their Date, which drops the
  // milliseconds, so sub-second ticks collapse into one per second (the
  // ".500 .500 .500" axis).
  const ticks = tickValues(lo, hi, tk);
  for (const l of layer) {
    l.encoding.x = {
      ...l.encoding.x, type: 'quantitative', scale: { zero: false, nice: false, domain: [lo, hi] },
      axis: { values: ticks, labelExpr: `timeFormat(datum.value, '${tk.format}')`, labelOverlap: true, labelFlush: true },
    };
  }
  return { ...base(), data: { values: padded }, layer };
}

// tickValues lists the ticks of a step in [lo, hi] (ms since the epoch):
// whole multiples of the step, hours and days counted in local time.
export function tickValues(lo, hi, tk) {
  const out = [];
  if (tk.ms && tk.ms < 36e5) {
    for (let v = Math.ceil(lo / tk.ms) * tk.ms; v <= hi; v += tk.ms) out.push(v);
    return out;
  }
  const d = new Date(lo);
  d.setMinutes(0, 0, 0);
  if (tk.interval === 'day') d.setHours(0);
  const next = () => (tk.interval === 'day' ? d.setDate(d.getDate() + tk.step) : d.setHours(d.getHours() + tk.step));
  if (tk.interval === 'hours') d.setHours(Math.floor(d.getHours() / tk.step) * tk.step);
  while (d.getTime() < lo) next();
  for (; d.getTime() <= hi && out.length < 100; next()) out.push(d.getTime());
  return out;
}

// padSingles makes a series of one point drawable as a line: a flat
// segment as wide as the smallest gap between the table's times (1 s
// when it has one time), centred on the point. The added rows have pad
// set, so no point mark is drawn for them.
export function padSingles(values, seriesKeys) {
  const groups = new Map();
  for (const o of values) {
    const g = seriesKeys.map((k) => o[k]).join('\u0000');
    groups.set(g, (groups.get(g) || []).concat([o]));
  }
  const times = [...new Set(values.map((o) => o.c0))].sort((a, b) => a - b);
  let gap = Infinity;
  for (let i = 1; i < times.length; i++) gap = Math.min(gap, times[i] - times[i - 1]);
  if (!Number.isFinite(gap)) gap = 1000;
  const out = values.slice();
  for (const rows of groups.values()) {
    if (rows.length !== 1) continue;
    const o = rows[0];
    out.push({ ...o, c0: o.c0 - gap / 2, pad: true }, { ...o, c0: o.c0 + gap / 2, pad: true });
  }
  return out;
}

// barSpec: ds.bar = {value, label, stackBy, groupBy, horizontal}.
export function barSpec(t, ds) {
  const b = ds.bar || {};
  const v = colIndex(t, b.value);
  const l = colIndex(t, b.label);
  const idx = [v, l];
  const cat = { field: 'c1', type: 'nominal', title: b.label, sort: null, axis: { labelLimit: 160 } };
  const val = { field: 'c0', type: 'quantitative', axis: axisFor(t, v) };
  const enc = b.horizontal ? { y: cat, x: val } : { x: cat, y: val };
  enc.tooltip = [{ field: 'c1', type: 'nominal', title: b.label }, { field: 'c0', type: 'quantitative', title: b.value }];
  if (b.stackBy) {
    idx.push(colIndex(t, b.stackBy));
    enc.color = { field: 'c2', type: 'nominal', title: b.stackBy };
  }
  if (b.groupBy) {
    idx.push(colIndex(t, b.groupBy));
    const g = 'c' + (idx.length - 1);
    enc[b.horizontal ? 'yOffset' : 'xOffset'] = { field: g, type: 'nominal' };
    if (!enc.color) enc.color = { field: g, type: 'nominal', title: b.groupBy };
  }
  return { ...base(), data: { values: rowsOf(t, idx) }, mark: { type: 'bar', tooltip: true }, encoding: enc };
}

// histogramSpec: ds.histogram = {value, maxbins, minstep, horizontal,
// prebinCount}.
export function histogramSpec(t, ds) {
  const hs = ds.histogram || {};
  const v = colIndex(t, hs.value);
  const idx = [v];
  // Values are binned (at most maxbins bins, none narrower than
  // minstep) whether or not the script counted them: with prebinCount
  // each row is a value with its count, and a bin sums the counts of the
  // values in it.
  const bin = { maxbins: Number(hs.maxbins) || 20 };
  if (Number(hs.minstep) > 0) bin.minstep = Number(hs.minstep);
  const x = { field: 'c0', type: 'quantitative', bin, axis: axisFor(t, v) };
  let y = { aggregate: 'count', type: 'quantitative', title: 'count' };
  if (hs.prebinCount) {
    idx.push(colIndex(t, hs.prebinCount));
    y = { aggregate: 'sum', field: 'c1', type: 'quantitative', title: hs.prebinCount };
  }
  const enc = hs.horizontal ? { y: x, x: y } : { x, y };
  return { ...base(), data: { values: rowsOf(t, idx) }, mark: { type: 'bar', tooltip: true }, encoding: enc };
}

// draw renders a Vega-Lite spec into el (SVG) and returns the view.
export async function draw(el, spec) {
  const { embed, interpreter } = await loadVega();
  const res = await embed(el, spec, { renderer: 'svg', actions: false, ast: true, expr: interpreter, tooltip: { theme: dark() ? 'dark' : 'light' } });
  return res.view;
}
