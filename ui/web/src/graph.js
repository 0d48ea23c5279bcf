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

// optional is col for the columns that only add to the picture (weight,
// colour, hover): as in Pixie, a missing one is ignored.
function optional(t, name) {
  return name ? t.cols.findIndex((c) => c.name === name) : -1;
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
    const rs = optional(t, ds.requestorServiceColumn), rp = optional(t, ds.requestorPodColumn);
    const ss = optional(t, ds.responderServiceColumn), sp = optional(t, ds.responderPodColumn);
    if (rs < 0 && rp < 0) throw new Error('the RequestGraph has neither requestor column in the output');
    if (ss < 0 && sp < 0) throw new Error('the RequestGraph has neither responder column in the output');
    from = (r) => str(rs, r) || str(rp, r);
    to = (r) => str(ss, r) || str(sp, r);
    const first = (...names) => names.map((n) => optional(t, n)).find((i) => i >= 0) ?? -1;
    weight = first(ds.requestsPerSecondColumn, ds.totalRequestCountColumn);
    colorCol = first(ds.p99Column, ds.p90Column, ds.p50Column);
    hover = [ds.p50Column, ds.p90Column, ds.p99Column, ds.errorRateColumn, ds.requestsPerSecondColumn, ds.totalRequestCountColumn].filter(Boolean).map((n) => optional(t, n));
    thresholds = { mediumThreshold: 100, highThreshold: 300 };
  } else {
    const adj = ds.adjacencyList || {};
    const f = col(t, adj.fromColumn), tt = col(t, adj.toColumn);
    from = (r) => str(f, r);
    to = (r) => str(tt, r);
    weight = optional(t, ds.edgeWeightColumn);
    colorCol = optional(t, ds.edgeColorColumn);
    hover = (ds.edgeHoverInfo || []).map((n) => optional(t, n));
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

// labelBoxes places each node's label on one of four sides of its node
// (right, left, below, above), the first that overlaps no label placed
// before it nor another node; when none is free, the least crowded side.
// Labels are about 6.6 px per character of 11 px monospace.
export function labelBoxes(pos, texts, R) {
  const boxes = [];
  const nodes = pos.map((p) => ({ x0: p.x - R, y0: p.y - R, x1: p.x + R, y1: p.y + R }));
  const hit = (a, b) => a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
  pos.forEach((p, i) => {
    const w = texts[i].length * 6.6, hgt = 13;
    const sides = [
      { x: p.x + R + 4, y: p.y + 4, anchor: 'start', b: { x0: p.x + R + 3, y0: p.y - 7, x1: p.x + R + 5 + w, y1: p.y + 6 } },
      { x: p.x - R - 4, y: p.y + 4, anchor: 'end', b: { x0: p.x - R - 5 - w, y0: p.y - 7, x1: p.x - R - 3, y1: p.y + 6 } },
      { x: p.x, y: p.y + R + 13, anchor: 'middle', b: { x0: p.x - w / 2, y0: p.y + R + 1, x1: p.x + w / 2, y1: p.y + R + 1 + hgt } },
      { x: p.x, y: p.y - R - 4, anchor: 'middle', b: { x0: p.x - w / 2, y0: p.y - R - 2 - hgt, x1: p.x + w / 2, y1: p.y - R - 2 } },
    ];
    let best = sides[0], bestN = Infinity;
    for (const sd of sides) {
      const n = boxes.filter((b) => hit(b, sd.b)).length + nodes.filter((b, j) => j !== i && hit(b, sd.b)).length;
      if (n < bestN) { best = sd; bestN = n; }
      if (n === 0) break;
    }
    boxes.push(best.b);
    best.box = best.b;
    pos[i].label = best;
  });
  return pos.map((p) => p.label);
}

// drawGraph draws the graph of table t into el. Wheel zooms around the
// pointer, dragging the background pans, dragging a node moves it (and
// its edges); double-click resets the view.
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
  const bg = svg('rect', { class: 'graph-bg', x: 0, y: 0, width: w, height: ht, fill: 'transparent' });
  const view = svg('g', { class: 'graph-view' });
  root.append(bg, view);
  const R = 7;
  const edgeEls = edges.map((e) => {
    const width = Number.isNaN(e.weight) ? 1.5 : 1 + 5 * Math.sqrt(Math.max(0, e.weight) / wmax);
    const p = svg('path', {
      class: 'edge ' + e.level, fill: 'none',
      stroke: COLORS[e.level], 'stroke-width': width.toFixed(2), 'marker-end': `url(#arrow-${e.level})`,
    }, svg('title', null, [`${e.from} → ${e.to}`, ...e.info].join('\n')));
    view.append(p);
    return p;
  });
  const edgePath = (e) => {
    const a = pos[idx.get(e.from)], b = pos[idx.get(e.to)];
    if (e.from === e.to) { // a process that calls itself: a loop above it
      return `M ${a.x - 4} ${a.y - R} C ${a.x - 34} ${a.y - 50}, ${a.x + 34} ${a.y - 50}, ${a.x + 4} ${a.y - R - 2}`;
    }
    const len = Math.max(1, Math.hypot(b.x - a.x, b.y - a.y));
    const ux = (b.x - a.x) / len, uy = (b.y - a.y) / len;
    return `M ${a.x + ux * R} ${a.y + uy * R} L ${b.x - ux * (R + 2)} ${b.y - uy * (R + 2)}`;
  };
  const texts = names.map((n) => (n.length > 40 ? n.slice(0, 40) + '…' : n));
  const nodeEls = [];
  const placeLabels = () => {
    labelBoxes(pos, texts, R).forEach((lb, i) => {
      const tx = nodeEls[i].querySelector('text');
      const p = pos[i];
      tx.setAttribute('x', (lb.x - p.x).toFixed(1));
      tx.setAttribute('y', (lb.y - p.y).toFixed(1));
      tx.setAttribute('text-anchor', lb.anchor);
    });
  };
  const redraw = () => {
    edges.forEach((e, i) => edgeEls[i].setAttribute('d', edgePath(e)));
    pos.forEach((p, i) => nodeEls[i].setAttribute('transform', `translate(${p.x.toFixed(1)},${p.y.toFixed(1)})`));
  };
  names.forEach((name, i) => {
    const g = svg('g', { class: 'node', dataset: { name } },
      svg('circle', { r: R }),
      svg('text', { x: R + 4, y: 4 }, texts[i]),
      svg('title', null, name));
    nodeEls.push(g);
    view.append(g);
  });
  redraw();
  placeLabels();

  // Pan and zoom: one transform on the view group.
  const z = { k: 1, x: 0, y: 0 };
  const apply = () => {
    view.setAttribute('transform', `translate(${z.x.toFixed(1)},${z.y.toFixed(1)}) scale(${z.k.toFixed(3)})`);
    root.dataset.zoom = z.k.toFixed(3);
  };
  const local = (ev) => {
    const r = root.getBoundingClientRect();
    return { x: (ev.clientX - r.left) * (w / r.width), y: (ev.clientY - r.top) * (ht / r.height) };
  };
  root.addEventListener('wheel', (ev) => {
    ev.preventDefault();
    const p = local(ev);
    const k = Math.min(8, Math.max(0.2, z.k * Math.exp(-ev.deltaY * 0.0015)));
    z.x = p.x - ((p.x - z.x) * k) / z.k;
    z.y = p.y - ((p.y - z.y) * k) / z.k;
    z.k = k;
    apply();
  }, { passive: false });
  root.addEventListener('dblclick', () => { z.k = 1; z.x = 0; z.y = 0; apply(); });
  root.addEventListener('pointerdown', (ev) => {
    const node = ev.target.closest('g.node');
    const start = local(ev);
    const i = node ? names.indexOf(node.dataset.name) : -1;
    const p0 = i >= 0 ? { x: pos[i].x, y: pos[i].y } : { x: z.x, y: z.y };
    root.setPointerCapture(ev.pointerId);
    root.classList.add('dragging');
    const move = (mv) => {
      const p = local(mv);
      if (i >= 0) { // a node: in the view's coordinates
        pos[i].x = p0.x + (p.x - start.x) / z.k;
        pos[i].y = p0.y + (p.y - start.y) / z.k;
        redraw();
      } else {
        z.x = p0.x + p.x - start.x;
        z.y = p0.y + p.y - start.y;
        apply();
      }
    };
    const up = () => {
      root.removeEventListener('pointermove', move);
      root.removeEventListener('pointerup', up);
      root.classList.remove('dragging');
      if (i >= 0) placeLabels();
    };
    root.addEventListener('pointermove', move);
    root.addEventListener('pointerup', up);
  });
  apply();
  el.append(root);
}
