// Graph and RequestGraph widgets: nodes and weighted edges from a table's
// adjacency columns, placed by a small force layout, drawn as SVG.
import { svg, h } from './dom.js';
import { ST } from './format.js';
import { cellText } from './table.js';

const COLORS = { low: '#3a9d5d', medium: '#e0a526', high: '#d64545', none: '#8a94a6' };

function col(t, name) {
  if (!name) return -1;
  const i = t.cols.findIndex((c) => c.name === name);
  if (i < 0) throw new Error(`column ${JSON.stringify(name)} is not in the output (it has ${t.cols.map((c) => c.name).join(', ')})`);
  return i;
}

function num(t, c, r) {
  if (c < 0) return NaN;
  const v = t.values[c][r];
  return typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : NaN;
}

// edgesOf reads {from, to, weight, color, info} edges from a table by a
// Graph or RequestGraph display spec.
export function edgesOf(t, ds, type) {
  let from, to, weight, colorCol, hover, thresholds;
  const str = (c, r) => (c < 0 ? '' : String(t.values[c][r]));
  if (type === 'RequestGraph') {
    const rs = col(t, ds.requestorServiceColumn), rp = col(t, ds.requestorPodColumn);
    const ss = col(t, ds.responderServiceColumn), sp = col(t, ds.responderPodColumn);
    from = (r) => str(rs, r) || str(rp, r);
    to = (r) => str(ss, r) || str(sp, r);
    weight = col(t, ds.requestsPerSecondColumn || ds.totalRequestCountColumn || '');
    colorCol = col(t, ds.p99Column || ds.p90Column || ds.p50Column || '');
    hover = [ds.p50Column, ds.p90Column, ds.p99Column, ds.errorRateColumn, ds.requestsPerSecondColumn, ds.totalRequestCountColumn].filter(Boolean).map((n) => col(t, n));
    thresholds = { mediumThreshold: 100, highThreshold: 300 };
  } else {
    const adj = ds.adjacencyList || {};
    const f = col(t, adj.fromColumn), tt = col(t, adj.toColumn);
    from = (r) => str(f, r);
    to = (r) => str(tt, r);
    weight = col(t, ds.edgeWeightColumn || '');
    colorCol = col(t, ds.edgeColorColumn || '');
    hover = (ds.edgeHoverInfo || []).map((n) => col(t, n));
    thresholds = ds.edgeThresholds;
  }
  // Thresholds of a duration column are in milliseconds, of a percent
  // column in percent; without thresholds: 100 ms / 200 ms, 5 % / 10 %.
  const sem = colorCol >= 0 ? t.cols[colorCol].sem : 0;
  const scale = sem === ST.DURATION_NS ? 1e6 : sem === ST.PERCENT ? 0.01 : 1;
  if (!thresholds) thresholds = sem === ST.PERCENT ? { mediumThreshold: 5, highThreshold: 10 } : { mediumThreshold: 100, highThreshold: 200 };
  const med = Number(thresholds.mediumThreshold) * scale, high = Number(thresholds.highThreshold) * scale;
  const edges = [];
  for (let r = 0; r < t.rows; r++) {
    const a = from(r), b = to(r);
    if (!a || !b) continue;
    const cv = num(t, colorCol, r);
    const level = Number.isNaN(cv) ? 'none' : cv >= high ? 'high' : cv >= med ? 'medium' : 'low';
    const info = hover.filter((c) => c >= 0).map((c) => `${t.cols[c].name}: ${cellText(t, c, r)}`);
    edges.push({ from: a, to: b, weight: num(t, weight, r), level, info });
  }
  return edges;
}

// layout places nodes with a Fruchterman-Reingold force layout in a
// w × h box; deterministic (nodes start on a circle in name order).
export function layout(names, edges, w, h) {
  const n = names.length;
  const pos = names.map((_, i) => ({ x: w / 2 + (w / 3) * Math.cos((2 * Math.PI * i) / n), y: h / 2 + (h / 3) * Math.sin((2 * Math.PI * i) / n) }));
  const index = new Map(names.map((s, i) => [s, i]));
  const k = Math.sqrt((w * h) / Math.max(n, 1)) * 0.6;
  let temp = w / 8;
  const iters = n > 300 ? 80 : 250;
  for (let it = 0; it < iters; it++) {
    const disp = pos.map(() => ({ x: 0, y: 0 }));
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        let dx = pos[i].x - pos[j].x, dy = pos[i].y - pos[j].y;
        const d = Math.max(0.01, Math.hypot(dx, dy));
        const f = (k * k) / d;
        dx /= d; dy /= d;
        disp[i].x += dx * f; disp[i].y += dy * f;
        disp[j].x -= dx * f; disp[j].y -= dy * f;
      }
    }
    for (const e of edges) {
      const i = index.get(e.from), j = index.get(e.to);
      if (i === j) continue;
      let dx = pos[i].x - pos[j].x, dy = pos[i].y - pos[j].y;
      const d = Math.max(0.01, Math.hypot(dx, dy));
      const f = (d * d) / k;
      dx /= d; dy /= d;
      disp[i].x -= dx * f; disp[i].y -= dy * f;
      disp[j].x += dx * f; disp[j].y += dy * f;
    }
    for (let i = 0; i < n; i++) {
      // gravity keeps unconnected parts on screen
      disp[i].x += (w / 2 - pos[i].x) * 0.05 * k / 10;
      disp[i].y += (h / 2 - pos[i].y) * 0.05 * k / 10;
      const d = Math.max(0.01, Math.hypot(disp[i].x, disp[i].y));
      pos[i].x += (disp[i].x / d) * Math.min(d, temp);
      pos[i].y += (disp[i].y / d) * Math.min(d, temp);
    }
    temp *= 0.97;
  }
  // fit into the box with a margin
  const xs = pos.map((p) => p.x), ys = pos.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const m = 30, right = Math.min(220, w / 4); // labels go right of nodes
  const sx = x1 > x0 ? (w - m - right) / (x1 - x0) : 1, sy = y1 > y0 ? (h - 2 * m) / (y1 - y0) : 1;
  return pos.map((p) => ({ x: x1 > x0 ? m + (p.x - x0) * sx : w / 2, y: y1 > y0 ? m + (p.y - y0) * sy : h / 2 }));
}

// drawGraph draws the graph of table t into el.
export function drawGraph(el, t, ds, type) {
  const edges = edgesOf(t, ds, type);
  const names = [...new Set(edges.flatMap((e) => [e.from, e.to]))].sort();
  const w = Math.max(300, el.clientWidth || 600), ht = Math.max(200, el.clientHeight || 400);
  if (!names.length) {
    el.append(h('div', { class: 'empty' }, 'No edges to draw.'));
    return;
  }
  const pos = layout(names, edges, w, ht);
  const idx = new Map(names.map((s, i) => [s, i]));
  const ws = edges.map((e) => e.weight).filter((x) => !Number.isNaN(x));
  const wmax = Math.max(1, ...ws);
  const root = svg('svg', { class: 'graph', width: w, height: ht, viewBox: `0 0 ${w} ${ht}` });
  const defs = svg('defs');
  for (const [level, color] of Object.entries(COLORS)) {
    defs.append(svg('marker', { id: 'arrow-' + level, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse' },
      svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: color })));
  }
  root.append(defs);
  const R = 7;
  for (const e of edges) {
    const a = pos[idx.get(e.from)], b = pos[idx.get(e.to)];
    const width = Number.isNaN(e.weight) ? 1.5 : 1 + 5 * Math.sqrt(Math.max(0, e.weight) / wmax);
    let d;
    if (e.from === e.to) { // a process that calls itself: a loop above it
      d = `M ${a.x - 4} ${a.y - R} C ${a.x - 34} ${a.y - 50}, ${a.x + 34} ${a.y - 50}, ${a.x + 4} ${a.y - R - 2}`;
    } else {
      const len = Math.max(1, Math.hypot(b.x - a.x, b.y - a.y));
      const ux = (b.x - a.x) / len, uy = (b.y - a.y) / len;
      d = `M ${a.x + ux * R} ${a.y + uy * R} L ${b.x - ux * (R + 2)} ${b.y - uy * (R + 2)}`;
    }
    root.append(svg('path', {
      class: 'edge ' + e.level, d, fill: 'none',
      stroke: COLORS[e.level], 'stroke-width': width.toFixed(2), 'marker-end': `url(#arrow-${e.level})`,
    }, svg('title', null, [`${e.from} → ${e.to}`, ...e.info].join('\n'))));
  }
  names.forEach((name, i) => {
    const p = pos[i];
    root.append(svg('g', { class: 'node', transform: `translate(${p.x.toFixed(1)},${p.y.toFixed(1)})` },
      svg('circle', { r: R }),
      svg('text', { x: R + 4, y: 4 }, name.length > 40 ? name.slice(0, 40) + '…' : name),
      svg('title', null, name)));
  });
  el.append(root);
}

