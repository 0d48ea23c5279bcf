// A code editor: a textarea with line numbers, and an error marker at a
// line and column with the engine's message.
import { h, clear } from './dom.js';

const LINE_H = 18; // px, matches .ed textarea in style.css

export class Editor {
  constructor(label, onRun) {
    this.gutter = h('div', { class: 'ed-gutter', 'aria-hidden': 'true' });
    this.marker = h('div', { class: 'ed-marker', hidden: true });
    this.area = h('textarea', {
      class: 'ed-text', spellcheck: 'false', autocomplete: 'off', wrap: 'off', 'aria-label': label,
      oninput: () => { this.clearError(); this.numbers(); },
      onscroll: () => this.sync(),
      onkeydown: (e) => {
        if (e.key === 'Tab') { // indent instead of leaving the field
          e.preventDefault();
          this.area.setRangeText('    ', this.area.selectionStart, this.area.selectionEnd, 'end');
          this.numbers();
        } else if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
          e.preventDefault();
          onRun();
        }
      },
    });
    this.msg = h('div', { class: 'ed-msg', hidden: true });
    this.el = h('div', { class: 'ed' }, h('div', { class: 'ed-title' }, label),
      h('div', { class: 'ed-box' }, this.gutter, h('div', { class: 'ed-main' }, this.area, this.marker)), this.msg);
    this.error = null;
  }

  get value() { return this.area.value; }
  set value(v) { this.area.value = v; this.clearError(); this.numbers(); }

  numbers() {
    const n = this.area.value.split('\n').length;
    if (this.gutter.childElementCount !== n || this.error) {
      clear(this.gutter);
      for (let i = 1; i <= n; i++) {
        this.gutter.append(h('div', { class: this.error && this.error.line === i ? 'ln err' : 'ln' }, String(i)));
      }
    }
    this.sync();
  }

  sync() {
    this.gutter.scrollTop = this.area.scrollTop;
    if (this.error) this.place();
  }

  // showError marks line:col (1-based) with message. When the message
  // quotes a name that starts at or just after col (the compiler points
  // at the "." of df.name), the caret and marker go on that name.
  showError(line, col, message) {
    const lines = this.area.value.split('\n');
    let len = 1;
    const name = /["'`]([A-Za-z_][\w.]*)["'`]/.exec(message || '');
    if (line && name && lines[line - 1] !== undefined) {
      const text = lines[line - 1];
      const at = text.indexOf(name[1], Math.max(0, col - 1));
      const before = text.lastIndexOf(name[1], Math.max(0, col - 1));
      const pick = at >= 0 && at - (col - 1) <= 2 ? at : before >= 0 && (col - 1) - before < name[1].length ? before : -1;
      if (pick >= 0) { col = pick + 1; len = name[1].length; }
    }
    this.error = { line, col, len };
    this.msg.hidden = false;
    this.msg.textContent = line ? `line ${line}, column ${col}: ${message}` : message;
    this.numbers();
    if (!line) return;
    // Put the caret there (selecting the name) and scroll it into view.
    let off = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) off += lines[i].length + 1;
    off += Math.max(0, col - 1);
    this.area.focus({ preventScroll: true });
    this.area.setSelectionRange(off, off + len);
    this.area.scrollTop = Math.max(0, (line - 4) * LINE_H);
    this.place();
  }

  place() {
    const { line, col, len } = this.error;
    if (!line) { this.marker.hidden = true; return; }
    const cw = this.charWidth();
    this.marker.hidden = false;
    this.marker.style.top = 6 + (line - 1) * LINE_H - this.area.scrollTop + 'px';
    this.marker.style.left = 8 + (Math.max(1, col) - 1) * cw - this.area.scrollLeft + 'px';
    this.marker.style.width = Math.max(cw * (len || 1), 6) + 'px';
    this.marker.title = this.msg.textContent;
  }

  charWidth() {
    if (!this.cw) {
      const probe = h('span', { class: 'ed-probe' }, 'x'.repeat(100));
      this.el.append(probe);
      this.cw = probe.getBoundingClientRect().width / 100 || 7.8;
      probe.remove();
    }
    return this.cw;
  }

  clearError() {
    if (!this.error) return;
    this.error = null;
    this.marker.hidden = true;
    this.msg.hidden = true;
    this.numbers();
  }
}
