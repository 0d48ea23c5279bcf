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

const BASE = {
  $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
  width: 'container',
  height: 'container',
  autosize: { type: 'fit', contains: 'padding' },
  config: { view: { stroke: null }, axis: { labelFontSize: 11, titleFontSize: 11 }, legend: { labelLimit: 220 } },
};

// timeseriesSpec: ds.timeseries = [{value, series, stackBySeries, mode}].
export function timeseriesSpec(t, ds) {
  const tcol = t.cols.findIndex((c) => c.name === 'time_') >= 0 ? colIndex(t, 'time_') : t.cols.findIndex((c) => c.kind === K.TIME);
  if (tcol < 0) throw new Error('a time series needs a time column (time_)');
  const entries = ds.timeseries || [];
  if (!entries.length) throw new Error('the TimeseriesChart spec lists no timeseries');
  const idx = [tcol];
  const key = (c) => { let k = idx.indexOf(c); if (k < 0) { idx.push(c); k = idx.length - 1; } return 'c' + k; };
  const layer = entries.map((e) => {
    const v = colIndex(t, e.value);
    const vk = key(v);
    const stacked = !!e.stackBySeries && !!e.series;
    let mark = { MODE_POINT: 'point', MODE_BAR: 'bar', MODE_AREA: 'area' }[e.mode] || 'line';
    if (stacked && mark === 'line') mark = 'area';
    const enc = {
      x: { field: 'c0', type: 'temporal', title: null },
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
    return { mark: { type: mark, tooltip: true, ...(mark === 'line' ? { strokeWidth: 1.5, point: t.rows <= 60 } : {}), ...(mark === 'area' ? { opacity: 0.7, line: true } : {}) }, encoding: enc };
  });
  if (ds.yAxis && ds.yAxis.label) layer[0].encoding.y.axis.title = ds.yAxis.label;
  return { ...BASE, data: { values: rowsOf(t, idx) }, layer };
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
  return { ...BASE, data: { values: rowsOf(t, idx) }, mark: { type: 'bar', tooltip: true }, encoding: enc };
}

// histogramSpec: ds.histogram = {value, maxbins, minstep, horizontal,
// prebinCount}.
export function histogramSpec(t, ds) {
  const hs = ds.histogram || {};
  const v = colIndex(t, hs.value);
  const idx = [v];
  let enc;
  if (hs.prebinCount) {
    idx.push(colIndex(t, hs.prebinCount));
    enc = { x: { field: 'c0', type: 'ordinal', title: hs.value }, y: { field: 'c1', type: 'quantitative', title: hs.prebinCount } };
  } else {
    const bin = { maxbins: Number(hs.maxbins) || 20 };
    if (Number(hs.minstep) > 0) bin.minstep = Number(hs.minstep);
    enc = { x: { field: 'c0', type: 'quantitative', bin, axis: axisFor(t, v) }, y: { aggregate: 'count', type: 'quantitative', title: 'count' } };
  }
  if (hs.horizontal) enc = { x: enc.y, y: enc.x };
  return { ...BASE, data: { values: rowsOf(t, idx) }, mark: { type: 'bar', tooltip: true }, encoding: enc };
}

// draw renders a Vega-Lite spec into el (SVG) and returns the view.
export async function draw(el, spec) {
  const { embed, interpreter } = await loadVega();
  const res = await embed(el, spec, { renderer: 'svg', actions: false, ast: true, expr: interpreter, tooltip: { theme: 'light' } });
  return res.view;
}
