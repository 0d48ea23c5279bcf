// The Table widget: sortable, resizable columns, semantic formatting,
// virtualized rows (only the rows in view exist in the DOM), and a detail
// pane that shows a row's long values and JSON pretty-printed.
import { h, clear } from './dom.js';
import { cell, K, ST, scriptRef } from './format.js';

const ROW_H = 24;
const HEAD_H = 28;
const OVERSCAN = 8;

// text returns the formatted value of row r of column c.
export function cellText(t, c, r) {
  const col = t.cols[c];
  return cell(t.values[c][r], col.kind, col.sem);
}

function looksJSON(s) {
  return typeof s === 'string' && s.length > 1 && (s[0] === '{' || s[0] === '[');
}

function compare(kind) {
  if (kind === K.STRING || kind === K.UINT128) return (a, b) => (a < b ? -1 : a > b ? 1 : 0);
  if (kind === K.BOOL) return (a, b) => Number(a) - Number(b);
  return (a, b) => (a < b ? -1 : a > b ? 1 : 0);
}

export class TableView {
  // t: {cols, values, rows}; openScript(script, args) follows a
  // script reference; prev, the viewState() of the table this one
  // replaces (a live rerun), keeps its sort, widths, scroll and open row.
  constructor(t, openScript, prev) {
    this.t = t;
    this.openScript = openScript;
    this.order = null; // row permutation when sorted
    this.sort = { col: -1, dir: 0 };
    this.widths = t.cols.map((c, i) => (prev && prev.widths[c.name]) || this.initialWidth(i));
    this.selected = -1;
    this.body = h('div', { class: 'tbl-body', onscroll: () => this.schedule() });
    this.detail = h('div', { class: 'tbl-detail', hidden: true });
    this.foot = h('div', { class: 'tbl-foot' });
    this.el = h('div', { class: 'tbl' }, this.body, this.detail, this.foot);
    this.rowsEl = h('div', { class: 'tbl-rows', onclick: (e) => this.click(e) });
    this.head = h('div', { class: 'tbl-head' });
    this.spacer = h('div', { class: 'tbl-spacer' }, this.head, this.rowsEl);
    this.body.append(this.spacer);
    this.drawn = [-1, -1];
    new ResizeObserver(() => this.render(true)).observe(this.body);
    if (prev) this.restore(prev);
    else this.layout();
  }

  // viewState is what a rerun's table takes over: sort (by column
  // name), column widths, scroll offsets and the open row (by its
  // values, since rows move between runs).
  viewState() {
    const widths = {};
    this.t.cols.forEach((c, i) => { widths[c.name] = this.widths[i]; });
    return {
      sort: this.sort.dir ? { name: this.t.cols[this.sort.col].name, dir: this.sort.dir } : null,
      widths, top: this.body.scrollTop, left: this.body.scrollLeft,
      selected: this.selected >= 0 ? this.rowKey(this.selected) : null,
    };
  }

  rowKey(r) { return this.t.cols.map((_, c) => cellText(this.t, c, r)).join('\u0000'); }

  restore(st) {
    const c = st.sort ? this.t.cols.findIndex((x) => x.name === st.sort.name) : -1;
    if (c >= 0) this.sortBy(c, st.sort.dir);
    this.layout();
    // The body has its size once it is in the page: scroll then.
    requestAnimationFrame(() => {
      this.body.scrollTop = st.top;
      this.body.scrollLeft = st.left;
      this.render(true);
    });
    if (st.selected !== null) {
      for (let r = 0; r < this.t.rows; r++) {
        if (this.rowKey(r) === st.selected) { this.select(r); break; }
      }
    }
  }

  initialWidth(c) {
    const col = this.t.cols[c];
    let n = col.name.length + 2;
    const sample = Math.min(this.t.rows, 200);
    for (let r = 0; r < sample; r++) n = Math.max(n, cellText(this.t, c, r).length);
    return Math.max(60, Math.min(420, Math.round(n * 7.4 + 18)));
  }

  totalWidth() { return this.widths.reduce((a, b) => a + b, 0); }

  layout() {
    const w = this.totalWidth();
    this.spacer.style.width = w + 'px';
    this.spacer.style.height = HEAD_H + this.t.rows * ROW_H + 'px';
    clear(this.head);
    this.head.style.width = w + 'px';
    this.t.cols.forEach((col, c) => {
      const arrow = this.sort.col === c ? (this.sort.dir > 0 ? ' ▲' : ' ▼') : '';
      const th = h('div', {
        class: 'th', style: { width: this.widths[c] + 'px' }, title: semName(col.sem) || col.kind,
        role: 'columnheader', dataset: { col: String(c) },
        onclick: (e) => { if (!e.target.classList.contains('grip')) this.toggleSort(c); },
      }, h('span', { class: 'th-name' }, col.name + arrow),
      h('span', { class: 'grip', onmousedown: (e) => this.startResize(e, c) }));
      this.head.append(th);
    });
    this.foot.textContent = `${this.t.rows.toLocaleString('en-US')} rows`;
    this.render(true);
  }

  toggleSort(c) {
    let dir = 1;
    if (this.sort.col === c) dir = this.sort.dir === 1 ? -1 : this.sort.dir === -1 ? 0 : 1;
    this.sortBy(c, dir);
    this.layout();
  }

  sortBy(c, dir) {
    this.sort = { col: dir ? c : -1, dir };
    if (!dir) this.order = null;
    else {
      const vals = this.t.values[c];
      const cmp = compare(this.t.cols[c].kind);
      const idx = Array.from({ length: this.t.rows }, (_, i) => i);
      idx.sort((a, b) => dir * cmp(vals[a], vals[b]) || a - b);
      this.order = idx;
    }
  }

  startResize(e, c) {
    e.preventDefault();
    const x0 = e.clientX;
    const w0 = this.widths[c];
    const move = (ev) => {
      this.widths[c] = Math.max(40, w0 + ev.clientX - x0);
      this.layout();
    };
    const up = () => {
      window.removeEventListener('mousemove', move);
      window.removeEventListener('mouseup', up);
    };
    window.addEventListener('mousemove', move);
    window.addEventListener('mouseup', up);
  }

  schedule() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = 0;
      this.render(false);
    });
  }

  // render draws the rows in view (and a few around them).
  render(force) {
    const top = this.body.scrollTop;
    const height = this.body.clientHeight || 400;
    const first = Math.max(0, Math.floor((top - HEAD_H) / ROW_H) - OVERSCAN);
    const last = Math.min(this.t.rows, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    if (!force && first === this.drawn[0] && last === this.drawn[1]) return;
    this.drawn = [first, last];
    const frag = document.createDocumentFragment();
    for (let i = first; i < last; i++) frag.append(this.row(i));
    clear(this.rowsEl).append(frag);
  }

  // row builds the element of display row i with plain DOM calls (the
  // hot path of scrolling); clicks are handled once, on rowsEl.
  row(i) {
    const r = this.order ? this.order[i] : i;
    const tr = document.createElement('div');
    tr.className = 'tr' + (r === this.selected ? ' sel' : '') + (i % 2 ? ' odd' : '');
    tr.setAttribute('role', 'row');
    tr.style.top = HEAD_H + i * ROW_H + 'px';
    tr.dataset.row = r;
    const { cols, values } = this.t;
    for (let c = 0; c < cols.length; c++) {
      const col = cols[c];
      const v = values[c][r];
      const td = document.createElement('div');
      td.setAttribute('role', 'cell');
      td.style.width = this.widths[c] + 'px';
      const ref = col.sem === ST.SCRIPT_REFERENCE && col.kind === K.STRING ? scriptRef(v) : null;
      if (ref) {
        td.className = 'td';
        const a = document.createElement('a');
        a.className = 'ref';
        a.href = refHref(ref);
        a.textContent = ref.label;
        a.dataset.col = c;
        td.append(a);
      } else {
        const text = cell(v, col.kind, col.sem);
        td.className = col.kind === K.INT || col.kind === K.FLOAT ? 'td num' : col.kind === K.STRING && looksJSON(v) ? 'td json' : 'td';
        td.textContent = text.length > 300 ? text.slice(0, 300) + '…' : text;
      }
      tr.append(td);
    }
    return tr;
  }

  // click handles a click in the rows: a script reference link, or a
  // row to show in the detail pane.
  click(e) {
    const tr = e.target.closest('.tr');
    if (!tr) return;
    const r = Number(tr.dataset.row);
    const a = e.target.closest('a.ref');
    if (a) {
      e.preventDefault();
      const ref = scriptRef(this.t.values[Number(a.dataset.col)][r]);
      if (ref) this.openScript(ref.script, ref.args);
      return;
    }
    this.select(r);
  }

  // select shows row r in the detail pane (again: hides it).
  select(r) {
    this.selected = this.selected === r ? -1 : r;
    this.render(true);
    clear(this.detail);
    this.detail.hidden = this.selected < 0;
    if (this.selected < 0) return;
    const close = h('button', { class: 'close', title: 'close', onclick: () => this.select(r) }, '×');
    const dl = h('dl');
    this.t.cols.forEach((col, c) => {
      const v = this.t.values[c][r];
      let body = cellText(this.t, c, r);
      if (col.kind === K.STRING && looksJSON(v)) {
        try { body = JSON.stringify(JSON.parse(v), null, 2); } catch { /* as is */ }
      }
      dl.append(h('dt', null, col.name), h('dd', null, h('pre', null, body)));
    });
    this.detail.append(close, dl);
  }

  // allText returns every row as the table shows it, in display order.
  allText() {
    const out = [];
    for (let i = 0; i < this.t.rows; i++) {
      const r = this.order ? this.order[i] : i;
      out.push(this.t.cols.map((_, c) => cellText(this.t, c, r)));
    }
    return out;
  }
}

// refHref is the page URL that opens a script with args.
export function refHref(ref) {
  const p = new URLSearchParams();
  p.set('script', ref.script);
  for (const [k, v] of Object.entries(ref.args)) p.set(k, v);
  return '?' + p.toString();
}

const SEM_NAMES = { 2: 'time', 200: 'UPID', 300: 'service', 400: 'pod', 500: 'node', 700: 'namespace', 800: 'bytes', 900: 'percent', 901: 'duration', 1001: 'duration quantiles', 3000: 'script reference' };
function semName(s) { return SEM_NAMES[s] || ''; }
