// The StackTraceFlameGraph widget: rows of (stack, count) folded into a
// tree of frames, drawn root first from the top, each frame as wide as
// its samples. Click a frame to zoom into it (click the top bar or
// "reset" to zoom out), search to highlight frames, and with a
// differenceColumn (Pixie) or a windowColumn of two windows (pxq:
// baselineWindow names the one to compare against) frames are coloured
// by how their share of the samples changed.
import { h, clear } from './dom.js';

const FRAME_H = 18; // px; matches .fg-frame in style.css
const MIN_PX = 0.5; // frames narrower than this are not drawn

function col(t, name, required) {
  const i = name ? t.cols.findIndex((c) => c.name === name) : -1;
  if (i < 0 && required) throw new Error(`column ${JSON.stringify(name)} is not in the output (it has ${t.cols.map((c) => c.name).join(', ')})`);
  return i;
}

const num = (v) => (typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : Number(v) || 0);

// node is one frame of the tree: total samples (value), the samples of
// the baseline window (base) and the summed differences (diff).
function node(name, parent) {
  return { name, parent, value: 0, base: 0, diff: 0, children: new Map() };
}

// foldStacks builds the frame tree of a table by the display spec ds.
// Each row adds its count along its stack ("root;…;leaf"); the entity
// columns (namespace, node, pod, container, pid) that the spec names and
// the table has become the first frames, as Pixie draws them.
export function foldStacks(t, ds) {
  const st = col(t, ds.stacktraceColumn || 'stack_trace', true);
  const ct = col(t, ds.countColumn || 'count', true);
  const df = col(t, ds.differenceColumn, false);
  const wc = col(t, ds.windowColumn, false);
  const prefix = [ds.namespaceColumn, ds.nodeColumn, ds.podColumn, ds.containerColumn, ds.pidColumn].map((n) => col(t, n, false)).filter((i) => i >= 0);
  let windows = null;
  if (wc >= 0) {
    windows = [...new Set(Array.from({ length: t.rows }, (_, r) => String(t.values[wc][r])))].sort();
    if (windows.length !== 2) throw new Error(`the windowColumn ${ds.windowColumn} must hold two windows to compare, it holds ${windows.length}`);
    // The baseline is baselineWindow when given, else the first in
    // sort order (times and numbered windows sort oldest first).
    if (ds.baselineWindow && windows[1] === String(ds.baselineWindow)) windows.reverse();
  }
  const root = node('all', null);
  const baseTotal = [0];
  for (let r = 0; r < t.rows; r++) {
    const count = num(t.values[ct][r]);
    const isBase = windows && String(t.values[wc][r]) === windows[0];
    const diff = df >= 0 ? num(t.values[df][r]) : 0;
    const frames = prefix.map((c) => String(t.values[c][r])).filter((s) => s !== '');
    for (const f of String(t.values[st][r]).split(';')) if (f !== '') frames.push(f);
    let n = root;
    const add = (x) => { if (isBase) x.base += count; else { x.value += count; x.diff += diff; } };
    add(n);
    for (const f of frames) {
      let c = n.children.get(f);
      if (!c) { c = node(f, n); n.children.set(f, c); }
      add(c);
      n = c;
    }
    if (isBase) baseTotal[0] += count;
  }
  return { root, windows, diff: df >= 0, baseTotal: baseTotal[0] };
}

// colour of a frame: by name in warm hues, or by change (red: more of
// the samples than before, blue: fewer).
function colour(n, g) {
  if (g.windows || g.diff) {
    let d; // change in the share of samples, -1 … 1
    if (g.windows) {
      const now = g.root.value ? n.value / g.root.value : 0;
      const before = g.baseTotal ? n.base / g.baseTotal : 0;
      d = now - before;
      d = Math.max(-1, Math.min(1, d * 4)); // a 25-point move is full colour
    } else {
      d = n.value ? Math.max(-1, Math.min(1, n.diff / n.value)) : 0;
    }
    n.change = d;
    const l = 96 - Math.abs(d) * 46;
    return d >= 0 ? `hsl(0, 80%, ${l}%)` : `hsl(215, 80%, ${l}%)`;
  }
  let hash = 0;
  for (let i = 0; i < n.name.length; i++) hash = (hash * 31 + n.name.charCodeAt(i)) | 0;
  const u = (hash >>> 0) / 4294967296;
  return `hsl(${Math.round(8 + u * 42)}, 78%, ${Math.round(55 + u * 12)}%)`;
}

function pathOf(n) {
  const p = [];
  for (let x = n; x && x.parent; x = x.parent) p.unshift(x.name);
  return p;
}

export class FlameGraph {
  // t: the table; ds: the display spec; prev: the viewState() of the
  // graph this one replaces (a live rerun keeps zoom and search).
  constructor(t, ds, prev) {
    this.g = foldStacks(t, ds);
    this.zoom = this.g.root;
    this.search = h('input', { type: 'search', class: 'fg-search', placeholder: 'Search frames (text or /regexp/)', 'aria-label': 'search frames', oninput: () => this.draw() });
    this.reset = h('button', { type: 'button', class: 'fg-reset', onclick: () => this.zoomTo(this.g.root) }, 'Reset zoom');
    this.info = h('span', { class: 'fg-info' });
    this.frames = h('div', { class: 'fg-frames', onclick: (e) => this.click(e) });
    this.el = h('div', { class: 'fg' }, h('div', { class: 'fg-bar' }, this.search, this.reset, this.info), h('div', { class: 'fg-scroll' }, this.frames));
    this.label = this.g.windows ? `${this.g.windows[1]} against ${this.g.windows[0]}` : '';
    if (prev) {
      this.search.value = prev.search || '';
      let n = this.g.root;
      for (const name of prev.zoom || []) { const c = n.children.get(name); if (!c) break; n = c; }
      this.zoom = n;
    }
    new ResizeObserver(() => this.draw()).observe(this.frames);
  }

  viewState() { return { zoom: pathOf(this.zoom), search: this.search.value }; }

  zoomTo(n) {
    this.zoom = n;
    this.draw();
  }

  matcher() {
    const q = this.search.value.trim();
    if (!q) return null;
    const m = /^\/(.+)\/$/.exec(q);
    if (m) {
      try { const re = new RegExp(m[1], 'i'); return (s) => re.test(s); } catch { /* as text */ }
    }
    const low = q.toLowerCase();
    return (s) => s.toLowerCase().includes(low);
  }

  click(e) {
    const f = e.target.closest('.fg-frame');
    if (!f) return;
    const n = this.byId[Number(f.dataset.id)];
    this.zoomTo(n === this.zoom ? (n.parent || n) : n);
  }

  // draw lays out the frames under the zoomed frame across the width;
  // its ancestors fill the rows above it.
  draw() {
    const width = this.frames.clientWidth || 800;
    const match = this.matcher();
    clear(this.frames);
    this.byId = [];
    const out = [];
    let matched = 0;
    let depth = 0;
    const total = this.zoom.value || 1;
    const frame = (n, x, w, d, dim) => {
      const id = this.byId.push(n) - 1;
      const hit = match && match(n.name);
      const el = document.createElement('div');
      el.className = 'fg-frame' + (hit ? ' match' : '') + (dim ? ' dim' : '') + (n === this.zoom ? ' zoomed' : '');
      el.style.left = x + 'px';
      el.style.width = Math.max(1, w - 1) + 'px';
      el.style.top = d * FRAME_H + 'px';
      el.style.background = colour(n, this.g);
      el.dataset.id = id;
      el.dataset.name = n.name;
      el.dataset.value = String(n.value);
      el.dataset.path = pathOf(n).join(';');
      if (n.change !== undefined) el.dataset.change = n.change.toFixed(3);
      const pct = ((100 * n.value) / (this.g.root.value || 1)).toFixed(2);
      let tip = `${n.name}\n${n.value.toLocaleString('en-US')} samples (${pct} %)`;
      if (this.g.windows) tip += `\n${this.g.windows[0]}: ${n.base.toLocaleString('en-US')} samples`;
      if (this.g.diff) tip += `\ndifference: ${n.diff.toLocaleString('en-US')}`;
      el.title = tip;
      if (w > 24) el.textContent = n.name; // CSS clips it with an ellipsis
      out.push(el);
    };
    // Ancestors of the zoomed frame, full width and dimmed.
    const anc = [];
    for (let x = this.zoom.parent; x; x = x.parent) anc.unshift(x);
    for (const a of anc) frame(a, 0, width, depth++, true);
    const walk = (n, x, d, counted) => {
      const w = (n.value / total) * width;
      if (w < MIN_PX) return;
      const hit = match && match(n.name);
      if (hit && !counted) matched += n.value;
      frame(n, x, w, d, false);
      let cx = x;
      // Children widest first, so that the hot paths line up on the left.
      for (const c of [...n.children.values()].sort((a, b) => b.value - a.value || (a.name < b.name ? -1 : 1))) {
        walk(c, cx, d + 1, counted || hit);
        cx += (c.value / total) * width;
      }
      this.maxDepth = Math.max(this.maxDepth, d);
    };
    this.maxDepth = depth;
    walk(this.zoom, 0, depth, false);
    this.frames.style.height = (this.maxDepth + 1) * FRAME_H + 'px';
    this.frames.append(...out);
    const parts = [`${this.g.root.value.toLocaleString('en-US')} samples`];
    if (this.zoom !== this.g.root) parts.push(`zoomed into ${this.zoom.name} (${((100 * this.zoom.value) / (this.g.root.value || 1)).toFixed(1)} %)`);
    if (match) parts.push(`matched ${((100 * matched) / (this.g.root.value || 1)).toFixed(1)} %`);
    if (this.label) parts.push(`colour: ${this.label} (red: more, blue: less)`);
    else if (this.g.diff) parts.push('colour: difference (red: more, blue: less)');
    this.info.textContent = parts.join(' · ');
    this.info.dataset.matched = match ? String(matched) : '';
    this.reset.disabled = this.zoom === this.g.root;
  }
}
