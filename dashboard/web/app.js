// What every page of the dashboard shares (an ES module): fetching the API, building
// elements (text always as text, never as HTML: architectures and reasons
// come from run files), formatting numbers, and sortable tables.

async function get(url, as) {
  const r = await fetch(url, {credentials: 'same-origin'});
  if (!r.ok) {
    let msg = r.status + ' ' + r.statusText;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return as === 'text' ? r.text() : r.json();
}
export const getJSON = url => get(url, 'json');
export const getText = url => get(url, 'text');

// h('td', {class: 'num', text: '3', onclick: f, dataset: {id: 3}}, child, ...)
export function h(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'checked' || k === 'value') e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== '') e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

export const runURL = (name, ...parts) => '/api/runs/' + [name, ...parts].map(p => encodeURIComponent(p)).join('/');
export const pageURL = name => '/runs/' + encodeURIComponent(name);

const blank = v => v === undefined || v === null || Number.isNaN(v);
export const num = (v, digits = 4) => blank(v) ? '' : Number(v).toFixed(digits);
// epsText writes an epsilon with the decimals it needs, at least one and at
// most four, as the Go side's controller.EpsilonText does (1.0, 0.05, 0.005).
export function epsText(e) {
  const s = Number(e).toFixed(4).replace(/0+$/, '');
  return s.endsWith('.') ? s + '0' : s;
}
export const int = v => v ? Number(v).toLocaleString('en-US') : '';
export function secs(v) {
  if (!v) return '';
  if (v < 60) return v.toFixed(1) + ' s';
  const m = Math.floor(v / 60);
  if (m < 60) return `${m} min ${Math.round(v % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}
// when formats a time as local YYYY-MM-DD HH:MM:SS ('' for Go's zero time).
// zone names the browser's time zone, which when writes times in: the
// server's may differ (the CLI's times are the server's).
export const zone = (() => {
  const off = -new Date().getTimezoneOffset();
  if (!off) return 'UTC';
  const a = Math.abs(off), p = n => String(n).padStart(2, '0');
  return `UTC${off < 0 ? '-' : '+'}${p(Math.floor(a / 60))}${a % 60 ? ':' + p(a % 60) : ''}`;
})();
export function when(iso) {
  if (!iso || iso.startsWith('0001-')) return '';
  const d = new Date(iso);
  const p = n => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
export const badge = status => h('span', {class: 'badge ' + status, text: status || 'unreadable'});
// winnerRank is a final model's rank, marked when it is the winner: the
// model picked by validation, not always the best in test accuracy.
export const winnerRank = (f, by) => f.winner ? [h('span', {class: 'winner-mark', text: 'winner',
  title: `picked by ${by || 'validation accuracy, ties by validation loss'}: winners/best.onnx`}), ' ', f.rank] : f.rank;

// Table draws rows into a <table> under a header whose cells sort it.
// columns: {key, label, title, num, cls, sortable (default true),
// value(row) to sort by (default row[key]), cell(row) -> text or nodes}.
// opts: sort, desc (the first order), rowProps(row), filter(row), empty (a
// text, or a function that returns one when the table is drawn).
export class Table {
  constructor(table, columns, opts = {}) {
    this.columns = columns;
    this.opts = opts;
    this.sortKey = opts.sort || columns[0].key;
    this.desc = !!opts.desc;
    this.rows = [];
    this.heads = columns.map(c => {
      const th = h('th', {class: c.num ? 'num' : '', title: c.title, text: c.label, dataset: {key: c.key}});
      if (c.sortable !== false) {
        th.classList.add('sortable');
        th.addEventListener('click', () => this.sortBy(c.key));
      }
      return th;
    });
    this.tbody = h('tbody');
    table.replaceChildren(h('thead', {}, h('tr', {}, this.heads)), this.tbody);
  }
  sortBy(key) {
    if (this.sortKey === key) this.desc = !this.desc;
    else { this.sortKey = key; this.desc = false; }
    this.render();
  }
  setRows(rows) { this.rows = rows; this.render(); }
  // relabel names the column of key anew, as the data turns out to need.
  relabel(key, label, title) {
    const th = this.heads[this.columns.findIndex(c => c.key === key)];
    th.textContent = label;
    if (title) th.title = title;
  }
  render() {
    const col = this.columns.find(c => c.key === this.sortKey);
    const value = col.value || (r => r[col.key]);
    const key = r => { const v = value(r); return blank(v) ? -Infinity : v; };
    const rows = this.rows.filter(r => !this.opts.filter || this.opts.filter(r));
    rows.sort((a, b) => {
      const x = key(a), y = key(b);
      const c = x < y ? -1 : x > y ? 1 : 0;
      return this.desc ? -c : c;
    });
    this.heads.forEach((th, i) => {
      th.classList.toggle('asc', this.columns[i].key === this.sortKey && !this.desc);
      th.classList.toggle('desc', this.columns[i].key === this.sortKey && this.desc);
    });
    const trs = rows.map(r => h('tr', this.opts.rowProps ? this.opts.rowProps(r) : {},
      this.columns.map(c => h('td', {class: [c.num ? 'num' : '', c.cls || ''].join(' ').trim() || null},
        c.cell ? c.cell(r) : r[c.key]))));
    if (trs.length === 0 && this.opts.empty) {
      const empty = typeof this.opts.empty === 'function' ? this.opts.empty() : this.opts.empty;
      trs.push(h('tr', {}, h('td', {class: 'empty', colspan: this.columns.length, text: empty})));
    }
    this.tbody.replaceChildren(...trs);
  }
}

