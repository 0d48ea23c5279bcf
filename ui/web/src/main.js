// pxq's web UI: pick a script, set its variables, run it, and see its
// output tables as the widgets of its vis spec.
import { h, clear } from './dom.js';
import * as api from './api.js';
import { columnsOf, decode } from './arrowcols.js';
import { TableView } from './table.js';
import { Editor } from './editor.js';
import { cell, K } from './format.js';

const RESERVED = new Set(['script', 'live', 'edit', 'library']);
const ENTITY_KINDS = { PX_POD: 'pod', PX_SERVICE: 'service', PX_NAMESPACE: 'namespace', PX_NODE: 'node' };
const ROW_UNIT = 64; // px per grid row of a widget position
const EDIT_DEBOUNCE_MS = 800; // typing pause before a live page reruns

const state = {
  scripts: [],
  detail: null, // {name, pxl, vis (object|null), manifest}
  inputs: new Map(), // variable name → input element
  running: null, // {id, abort}
  runs: 0,
  liveTimer: 0,
  library: false, // the library's copy of a shadowed script
  committed: null, // the variable values of the last run started by the user
  editTimer: 0,
  layout: null, // {vis, byOutput} of the grid drawn last, reused by live ticks
  info: { now: '', note: '', defaultScript: '' },
};

// Test and debugging hooks: the tables of the last run.
const views = new Map();
window.pxq = { views, state, format: { cell, K }, tick: () => runNow({ tick: true }) };

// ---- page skeleton ----
const search = h('input', { type: 'search', class: 'search', placeholder: 'Search scripts…', 'aria-label': 'search scripts', oninput: () => drawList() });
const list = h('ul', { class: 'scripts', role: 'listbox' });
const title = h('h1', { class: 'title' }, 'pxq');
const desc = h('p', { class: 'desc' });
const note = h('p', { class: 'data-note', id: 'data-note', hidden: true });
const shadowNote = h('p', { class: 'shadow-note', id: 'shadow-note', hidden: true });
const runBtn = h('button', { class: 'run', id: 'run', title: 'Run (Ctrl+Enter)', onclick: () => runNow({ commit: true }) }, 'RUN');
const liveBox = h('input', { type: 'checkbox', id: 'live', onchange: () => setLive() });
const liveSel = h('select', { id: 'live-every', 'aria-label': 'live interval', onchange: () => setLive() },
  [5, 10, 30, 60].map((s) => h('option', { value: String(s), selected: s === 10 }, `${s}s`)));
const editBtn = h('button', { class: 'edit', id: 'edit', onclick: () => toggleEditor() }, 'Edit');
const status = h('span', { class: 'status', id: 'status', role: 'status' });
const progress = h('div', { class: 'progress', hidden: true });
const vars = h('form', { class: 'vars', novalidate: true, onsubmit: (e) => { e.preventDefault(); runNow({ commit: true }); } });
const messages = h('div', { class: 'messages', 'aria-live': 'polite' });
const grid = h('div', { class: 'grid', id: 'grid' });
const pxlEd = new Editor('script.pxl', () => runNow({ commit: true }));
const visEd = new Editor('vis.json', () => runNow({ commit: true }));
const editor = h('section', { class: 'editor', hidden: true },
  h('div', { class: 'editor-bar' }, h('span', null, 'Edit the script and its vis spec, then RUN (Ctrl+Enter) to run them in place.'),
    h('button', { type: 'button', onclick: () => resetEditor() }, 'Revert')),
  h('div', { class: 'editor-panes' }, pxlEd.el, visEd.el));

document.body.append(
  h('header', null, h('span', { class: 'logo' }, 'pxq'), title, h('div', { class: 'spacer' }),
    h('label', { class: 'live' }, liveBox, ' live every ', liveSel), editBtn, runBtn),
  progress,
  h('div', { class: 'layout' },
    h('aside', null, search, list),
    h('main', null, note, desc, shadowNote, vars, h('div', { class: 'statusbar' }, status), messages, editor, grid)));

document.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); runNow({ commit: true }); }
});
window.addEventListener('popstate', () => openFromURL());

// ---- auth ----
let tokenPrompt = null;
function askToken(message) {
  if (tokenPrompt) return tokenPrompt;
  tokenPrompt = new Promise((resolve) => {
    const input = h('input', { type: 'password', id: 'token', autocomplete: 'off', 'aria-label': 'token' });
    const dlg = h('div', { class: 'modal' }, h('form', {
      onsubmit: (e) => { e.preventDefault(); api.setToken(input.value.trim()); dlg.remove(); tokenPrompt = null; resolve(); },
    }, h('p', null, message || 'This pxq server needs a token.'), input, h('button', { type: 'submit' }, 'Use token')));
    document.body.append(dlg);
    input.focus();
  });
  return tokenPrompt;
}

async function authed(fn) {
  for (;;) {
    try { return await fn(); } catch (e) {
      if (!(e instanceof api.AuthError)) throw e;
      await askToken(sessionStorage.getItem('pxq.token') ? 'The token was refused; enter it again.' : e.message);
    }
  }
}

// ---- script list ----
function drawList() {
  const q = search.value.trim().toLowerCase();
  clear(list);
  for (const s of state.scripts) {
    if (q && !s.name.toLowerCase().includes(q) && !(s.short || '').toLowerCase().includes(q)) continue;
    const lib = !!s.library;
    const cur = state.detail && state.detail.name === s.name && state.library === lib;
    // A user folder's script that hides the library's is marked, and
    // the library's copy is listed under it.
    const badge = s.shadows ? h('span', { class: 'badge', title: `from ${s.source}; it shadows the library script of the same name` }, 'yours · shadows library')
      : lib ? h('span', { class: 'badge lib', title: 'the library script that a script of yours shadows' }, 'library copy') : null;
    const cls = [cur ? 'cur' : '', s.shadows ? 'shadows' : '', lib ? 'libcopy' : ''].filter(Boolean).join(' ');
    list.append(h('li', { class: cls, role: 'option', dataset: { name: s.name, library: lib ? '1' : '0' } },
      h('a', { href: '?script=' + encodeURIComponent(s.name) + (lib ? '&library=1' : ''), onclick: (e) => { e.preventDefault(); openScript(s.name, {}, true, lib); } },
        h('span', { class: 'name' }, s.name, badge), h('span', { class: 'short' }, s.short || ''))));
  }
}

// ---- opening a script ----
function parseVis(text) {
  if (!text || !text.trim()) return null;
  return JSON.parse(text);
}

async function openScript(name, args, push, library) {
  stopLive(false);
  const d = await authed(() => api.getJSON('/api/scripts/' + name.split('/').map(encodeURIComponent).join('/') + (library ? '?library=1' : '')));
  state.detail = d;
  state.library = !!library;
  state.layout = null;
  shadowNote.hidden = !(d.shadows || d.library);
  shadowNote.textContent = d.shadows ? `This is your script from ${d.source}; it shadows the library script of the same name (listed below it as "library copy").`
    : d.library ? 'This is the library\'s copy of a script that one of yours shadows.' : '';
  title.textContent = d.name;
  desc.textContent = d.manifest.long || d.manifest.short || '';
  document.title = d.name + ' · pxq';
  pxlEd.value = d.pxl;
  visEd.value = d.vis ? JSON.stringify(d.vis, null, 2) : '';
  drawVars(d.vis, args);
  drawList();
  clear(messages);
  clear(grid);
  views.clear();
  state.committed = values();
  if (push) history.pushState(null, '', urlFor());
  await runNow({ commit: true });
}

function resetEditor() {
  const d = state.detail;
  if (!d) return;
  pxlEd.value = d.pxl;
  visEd.value = d.vis ? JSON.stringify(d.vis, null, 2) : '';
}

function toggleEditor() {
  editor.hidden = !editor.hidden;
  editBtn.classList.toggle('on', !editor.hidden);
  const u = new URL(location.href);
  if (editor.hidden) u.searchParams.delete('edit'); else u.searchParams.set('edit', '1');
  history.replaceState(null, '', u);
}

function edited() {
  const d = state.detail;
  if (!d || editor.hidden) return false;
  return pxlEd.value !== d.pxl || visEd.value !== (d.vis ? JSON.stringify(d.vis, null, 2) : '');
}

function drawVars(vis, args) {
  clear(vars);
  state.inputs.clear();
  for (const v of (vis && vis.variables) || []) {
    // A variable without a default must be set before the script runs.
    const required = v.defaultValue === undefined || v.defaultValue === null;
    const val = args[v.name] !== undefined ? args[v.name] : v.defaultValue ?? '';
    let input;
    if (v.validValues && v.validValues.length) {
      input = h('select', { name: v.name }, v.validValues.map((x) => h('option', { value: x, selected: x === val }, x)));
    } else if (v.type === 'PX_BOOLEAN') {
      input = h('select', { name: v.name }, ['true', 'false'].map((x) => h('option', { value: x, selected: x === String(val).toLowerCase() }, x)));
    } else {
      const kind = ENTITY_KINDS[v.type];
      const listId = kind ? 'entities-' + v.name : undefined;
      input = h('input', {
        name: v.name, value: val, list: listId, type: 'text', required,
        inputmode: v.type === 'PX_INT64' || v.type === 'PX_FLOAT64' ? 'decimal' : undefined,
        placeholder: required ? 'required' : v.defaultValue === '' ? '(any)' : undefined,
        onfocus: kind ? () => loadEntities(kind, listId) : undefined,
        oninput: () => edits(),
      });
      if (kind) vars.append(h('datalist', { id: listId }));
    }
    if (input.tagName === 'SELECT') input.addEventListener('change', () => edits());
    state.inputs.set(v.name, input);
    vars.append(h('label', { class: 'var' + (required ? ' required' : ''), title: v.description || v.name, dataset: { var: v.name } },
      h('span', null, v.name + (required ? ' *' : '')), input, h('span', { class: 'var-err', hidden: true })));
  }
  vars.append(h('button', { type: 'submit', hidden: true }));
}

async function loadEntities(kind, listId) {
  const dl = document.getElementById(listId);
  // Entities come and go: ask again on a focus 10 s after the last time.
  if (!dl || Date.now() - Number(dl.dataset.at || 0) < 10000) return;
  dl.dataset.at = String(Date.now());
  try {
    const r = await authed(() => api.getJSON('/api/entities?kind=' + kind));
    dl.dataset.loaded = '1';
    clear(dl).append(...r.names.map((n) => h('option', { value: n })));
  } catch { /* no suggestions */ }
}

function values() {
  const out = {};
  for (const [k, el] of state.inputs) out[k] = el.value;
  return out;
}

// edits follows typing in a variable: a live page reruns once the typing
// pauses, never with a half-typed value (live ticks use the values of
// the last run the user started).
function edits() {
  clearTimeout(state.editTimer);
  if (!liveBox.checked) return;
  state.editTimer = setTimeout(() => runNow({ commit: true }), EDIT_DEBOUNCE_MS);
}

// markVar shows a variable's error under its input ('' clears).
function markVar(name, message) {
  const label = vars.querySelector(`label[data-var="${CSS.escape(name)}"]`);
  if (!label) return false;
  const err = label.querySelector('.var-err');
  label.classList.toggle('bad', !!message);
  err.hidden = !message;
  err.textContent = message || '';
  if (message) label.querySelector('input, select').focus();
  return true;
}

function clearVarMarks() {
  for (const name of state.inputs.keys()) markVar(name, '');
}

function urlFor() {
  const p = new URLSearchParams();
  p.set('script', state.detail.name);
  if (state.library) p.set('library', '1');
  for (const [k, v] of Object.entries(state.committed || values())) if (!RESERVED.has(k)) p.set(k, v);
  if (liveBox.checked) p.set('live', liveSel.value);
  if (!editor.hidden) p.set('edit', '1');
  return '?' + p.toString();
}

// ---- running ----
function banner(kind, text, extra) {
  const b = h('div', { class: 'banner ' + kind, role: kind === 'error' ? 'alert' : 'status' }, h('span', null, text), extra || null);
  messages.append(b);
  return b;
}

function widgetType(w) {
  const t = (w.displaySpec && w.displaySpec['@type']) || '';
  return t.slice(t.lastIndexOf('.') + 1) || 'Table';
}

// layoutWidgets builds the grid of the vis spec's widgets; it returns a
// map from output name to the widgets that show it.
function layoutWidgets(vis) {
  clear(grid);
  const byOutput = new Map();
  let maxY = 0;
  (vis && vis.widgets || []).forEach((w, i) => {
    const out = w.globalFuncOutputName || w.name || `widget_${i}`;
    const p = w.position;
    const body = h('div', { class: 'wbody' }, h('div', { class: 'empty' }, 'waiting…'));
    const note = h('div', { class: 'wnote' });
    const el = h('section', { class: 'widget', dataset: { output: out, type: widgetType(w) } },
      h('div', { class: 'whead' }, h('span', { class: 'wtitle' }, w.name || out), note), body);
    if (p) {
      el.style.gridColumn = `${p.x + 1} / span ${Math.max(1, Math.min(12, p.w))}`;
      el.style.gridRow = `${p.y + 1} / span ${Math.max(1, p.h)}`;
      maxY = Math.max(maxY, p.y + p.h);
    } else {
      el.style.gridColumn = '1 / span 12';
      el.style.gridRow = 'span 6';
    }
    grid.append(el);
    if (!byOutput.has(out)) byOutput.set(out, []);
    byOutput.get(out).push({ spec: w, el, body, note, type: widgetType(w) });
  });
  state.extraY = maxY;
  return byOutput;
}

// extraWidget shows an output that no widget names (px.display, px.debug,
// a script without a vis spec) as a full-width table.
function extraWidget(name) {
  const body = h('div', { class: 'wbody' });
  const note = h('div', { class: 'wnote' });
  const el = h('section', { class: 'widget', dataset: { output: name, type: 'Table' } },
    h('div', { class: 'whead' }, h('span', { class: 'wtitle' }, name), note), body);
  el.style.gridColumn = '1 / span 12';
  el.style.gridRow = `${state.extraY + 1} / span 6`;
  state.extraY += 6;
  grid.append(el);
  return { spec: {}, el, body, note, type: 'Table' };
}

async function renderWidget(w, t, done, prev) {
  clear(w.body);
  w.el.classList.remove('truncated');
  w.note.textContent = `${t.rows.toLocaleString('en-US')} rows`;
  if (done.truncated) {
    w.note.textContent += ' (row cap reached: later rows dropped)';
    w.el.classList.add('truncated');
  }
  try {
    const ds = w.spec.displaySpec || {};
    switch (w.type) {
      case 'TimeseriesChart': case 'BarChart': case 'HistogramChart': {
        if (!t.rows) { w.body.append(h('div', { class: 'empty' }, 'No rows.')); return; }
        const charts = await import('./charts.js');
        const box = h('div');
        w.body.append(h('div', { class: 'chart' }, box));
        const spec = w.type === 'TimeseriesChart' ? charts.timeseriesSpec(t, ds, box.clientWidth) : w.type === 'BarChart' ? charts.barSpec(t, ds) : charts.histogramSpec(t, ds);
        await charts.draw(box, spec);
        break;
      }
      case 'Graph': case 'RequestGraph': {
        const { drawGraph } = await import('./graph.js');
        drawGraph(w.body, t, ds, w.type);
        break;
      }
      case 'StackTraceFlameGraph': {
        const { FlameGraph } = await import('./flame.js');
        const f = new FlameGraph(t, ds, prev && prev.flame);
        w.body.append(f.el);
        w.flame = f;
        break;
      }
      default: {
        const v = new TableView(t, (script, args) => openScript(script, args, true).catch(showError), prev && prev.table);
        w.body.append(v.el);
        views.set(w.el.dataset.output, v);
      }
    }
  } catch (e) {
    clear(w.body).append(h('div', { class: 'banner error' }, `cannot draw ${w.type}: ${e.message}`));
  }
}

function showError(e) {
  const b = e.body || { message: e.message };
  const own = b.kind === 'args' && b.variable && b.message.startsWith(b.variable + ': ') ? b.message.slice(b.variable.length + 2) : b.message;
  if (b.kind === 'args' && b.variable && markVar(b.variable, own)) {
    banner('error', `Variable ${b.variable}: ${own}`);
  } else if (b.kind === 'compile' || b.kind === 'vis') {
    const ed = b.kind === 'vis' ? visEd : pxlEd;
    if (editor.hidden) toggleEditor();
    ed.showError(b.line, b.col, b.message);
    banner('error', (b.line ? `${b.file || ''}:${b.line}:${b.col}: ` : '') + b.message);
  } else if (b.kind === 'agents') {
    banner('error', 'Some agents did not answer, so the results would be incomplete: ' + b.message);
  } else {
    banner('error', b.message);
  }
}

// missingVars lists the variables without a default that have no value.
function missingVars(vis, args) {
  return ((vis && vis.variables) || []).filter((v) => (v.defaultValue === undefined || v.defaultValue === null) && !String(args[v.name] ?? '').trim()).map((v) => v.name);
}

// runNow runs the script. opts.commit takes the variables' values as
// they are now (RUN, Enter, a pause in typing); a live tick (opts.tick)
// reruns with the values of the last such run, and is skipped while a
// run is going on.
async function runNow(opts = {}) {
  if (!state.detail) return;
  if (opts.tick && state.running) return;
  if (opts.commit || !state.committed) {
    clearTimeout(state.editTimer);
    state.committed = values();
  }
  const args = { ...state.committed };
  if (state.running) state.running.abort.abort();
  clearTimeout(state.liveTimer);
  clearVarMarks();
  const id = ++state.runs;
  const abort = new AbortController();
  state.running = { id, abort };
  history.replaceState(null, '', urlFor());
  const useEditor = edited();
  let vis = state.detail.vis;
  if (useEditor) {
    try { vis = parseVis(visEd.value); } catch { vis = null; /* the server says where */ }
  }
  const missing = missingVars(vis, args);
  if (missing.length) {
    // Ask instead of sending '' for a variable that has no default.
    state.running = null;
    clear(messages);
    banner('warning', `Set ${missing.join(', ')} to run this script: ${missing.length > 1 ? 'these variables have' : 'this variable has'} no default.`);
    markVar(missing[0], 'required: give a value, then RUN');
    status.textContent = 'waiting for ' + missing.join(', ');
    document.body.dataset.state = 'needs-input';
    return;
  }
  const req = useEditor
    ? { script: state.detail.name, pxl: pxlEd.value, vis: visEd.value, args }
    : { script: state.detail.name, args, library: state.library };
  pxlEd.clearError();
  visEd.clearError();
  const started = performance.now();
  const startedAt = new Date();
  let tables = 0;
  let rows = 0;
  progress.hidden = false;
  runBtn.disabled = false;
  runBtn.textContent = 'RUNNING';
  document.body.dataset.state = 'running';
  status.textContent = 'running…';
  const pendingWarnings = [];
  let byOutput = null;
  let batches = [];
  let schema = null;
  const drawn = [];
  const filled = new Set();
  const visKey = JSON.stringify(vis);
  const prev = new Map(); // output → the view state of its widgets
  const fresh = () => {
    // The previous run's widgets stay until this run's first frame. A
    // rerun of the same vis keeps the grid, and each table its sort,
    // scroll, column widths and open row.
    if (byOutput) return;
    clear(messages);
    for (const [out, v] of views) prev.set(out, { table: v.viewState() });
    if (state.layout) {
      for (const [out, ws] of state.layout.byOutput) for (const w of ws) if (w.flame) prev.set(out, { ...prev.get(out), flame: w.flame.viewState() });
    }
    views.clear();
    if (state.layout && state.layout.key === visKey) byOutput = state.layout.byOutput;
    else byOutput = layoutWidgets(vis);
    state.layout = { key: visKey, byOutput };
    for (const w of pendingWarnings) banner('warning', w);
  };
  try {
    const end = await authed(() => api.run(req, {
      onTable(name, s) { fresh(); schema = s; batches = []; },
      onBatch(name, b) { batches.push(b); },
      onDone(name, done) {
        if (id !== state.runs) return;
        const t = decode(columnsOf(schema), batches);
        batches = [];
        tables++;
        rows += t.rows;
        status.textContent = `running… ${tables} table${tables === 1 ? '' : 's'} received`;
        const ws = byOutput.get(name) || [extraWidget(name)];
        byOutput.set(name, ws);
        filled.add(name);
        for (const w of ws) drawn.push(renderWidget(w, t, done, prev.get(name)));
        if (done.truncated) banner('warning', `Table ${name}: the row cap was reached; only the first ${done.rows.toLocaleString('en-US')} rows are shown.`);
      },
      onWarning(msg) { if (byOutput) banner('warning', msg); else pendingWarnings.push(msg); },
    }, abort.signal));
    fresh();
    await Promise.all(drawn);
    if (id !== state.runs) return;
    for (const [out, ws] of byOutput) {
      if (filled.has(out)) continue;
      for (const w of ws) { w.note.textContent = ''; clear(w.body).append(h('div', { class: 'empty' }, 'The run produced no table named ' + out + '.')); }
    }
    const ms = performance.now() - started;
    status.textContent = `last run ${startedAt.toLocaleTimeString()} · ${fmtMs(ms)} (server ${fmtMs(end.elapsedMs)}) · ${tables} table${tables === 1 ? '' : 's'}, ${rows.toLocaleString('en-US')} rows` + (useEditor ? ' · edited script' : '');
    document.body.dataset.state = 'done';
  } catch (e) {
    if (e.name === 'AbortError' || id !== state.runs) return;
    fresh();
    for (const [out, ws] of byOutput) {
      if (filled.has(out)) continue;
      for (const w of ws) { w.note.textContent = ''; clear(w.body).append(h('div', { class: 'empty' }, 'Not run: the script failed.')); }
    }
    showError(e);
    status.textContent = `last run ${startedAt.toLocaleTimeString()} failed after ${fmtMs(performance.now() - started)}`;
    document.body.dataset.state = 'error';
  } finally {
    if (id === state.runs) {
      state.running = null;
      progress.hidden = true;
      runBtn.textContent = 'RUN';
      document.body.dataset.runs = String(id);
      if (liveBox.checked) state.liveTimer = setTimeout(() => runNow({ tick: true }), Number(liveSel.value) * 1000);
    }
  }
}

function fmtMs(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

function setLive() {
  clearTimeout(state.liveTimer);
  if (state.detail) history.replaceState(null, '', urlFor());
  if (liveBox.checked && !state.running) runNow({ tick: true });
}

function stopLive(uncheck) {
  clearTimeout(state.liveTimer);
  if (uncheck) liveBox.checked = false;
}

// ---- start ----
async function openFromURL() {
  const p = new URLSearchParams(location.search);
  const live = p.get('live');
  if (live) {
    liveBox.checked = true;
    if ([...liveSel.options].some((o) => o.value === live)) liveSel.value = live;
  }
  if (p.get('edit') === '1' && editor.hidden) toggleEditor();
  let name = p.get('script');
  if (!name) {
    // The landing page opens a default script rather than an empty page.
    name = state.info.defaultScript || (state.scripts[0] && state.scripts[0].name);
    if (!name) {
      title.textContent = 'pxq';
      desc.textContent = 'Pick a script on the left.';
      return;
    }
    await openScript(name, {}, false, false);
    history.replaceState(null, '', urlFor());
    return;
  }
  const args = {};
  for (const [k, v] of p) if (!RESERVED.has(k)) args[k] = v;
  await openScript(name, args, false, p.get('library') === '1');
}

async function start() {
  try {
    state.info = await authed(() => api.getJSON('/api/info'));
    const frozen = state.info.now ? new Date(state.info.now) : null;
    note.hidden = !state.info.note && !frozen;
    note.textContent = state.info.note || (frozen ? `Every query runs as of ${frozen.toLocaleString()}.` : '');
    if (frozen) note.dataset.now = state.info.now;
    state.scripts = await authed(() => api.getJSON('/api/scripts'));
    drawList();
    await openFromURL();
  } catch (e) {
    showError(e);
  }
}

start();
