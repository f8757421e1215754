// The compare page: the best reward so far of two or more runs in one
// figure, and their final tables side by side; refreshed every five seconds.
import {getJSON, h, runURL, pageURL, num, int, badge, Table} from './app.js';

const $ = id => document.getElementById(id);
const names = new URLSearchParams(location.search).getAll('run');
const problem = e => { $('problem').textContent = e ? String(e.message || e) : ''; };

async function picker() {
  $('pick').hidden = false;
  const runs = await getJSON('/api/runs');
  const boxes = runs.map(r => h('label', {},
    h('input', {type: 'checkbox', name: 'run', value: r.name, checked: names.includes(r.name)}),
    ` ${r.name} (${r.kind}, ${r.trials} of ${r.planned} trials, ${r.status})`));
  $('picker').replaceChildren(...boxes, h('p', {}, h('button', {type: 'submit', text: 'Compare'})));
}

// The final table, and the leading architectures of a run without one.
const finalColumns = [
  {key: 'rank', label: 'Rank', num: true},
  {key: 'arch', label: 'Architecture', cls: 'arch'},
  {key: 'params', label: 'Parameters', num: true, cell: f => int(f.params)},
  {key: 'val_accuracy', label: 'Val. acc.', num: true, cell: f => num(f.val_accuracy)},
  {key: 'test_accuracy', label: 'Test acc.', num: true, cell: f => f.status === 'ok' ? num(f.test_accuracy) : f.status},
];
const topColumns = [
  {key: 'rank', label: 'Rank', num: true},
  {key: 'arch', label: 'Architecture', cls: 'arch'},
  {key: 'reward', label: 'Mean reward', num: true, cell: t => num(t.reward)},
  {key: 'samples', label: 'Samples', num: true},
];

// column is one run's side: its facts and its final table, or its
// leading architectures while it has no final models.
function column(name) {
  const facts = h('p', {class: 'muted'});
  const caption = h('p', {class: 'muted'});
  const table = h('table');
  const box = h('div', {dataset: {run: name}},
    h('h3', {}, h('a', {href: pageURL(name), text: name}), ' ', h('span', {class: 'status'})), facts, caption, table);
  async function update() {
    const d = await getJSON(runURL(name));
    box.querySelector('.status').replaceChildren(badge(d.status));
    facts.textContent = `${d.kind}: ${d.trials} of ${d.planned} trials, best reward ${num(d.best_reward)}` +
      (d.final_models ? `, best test accuracy ${num(d.best_test_accuracy)}` : '');
    const finals = (d.report && d.report.finals) || [];
    const top = (d.report && d.report.top) || [];
    caption.textContent = finals.length ? 'Final models (retrained, then tested):' : 'No final models yet; the leading architectures of the search:';
    new Table(table, finals.length ? finalColumns : topColumns, {empty: 'No architecture evaluated yet.'}).setRows(finals.length ? finals : top);
    return d.version;
  }
  return {box, update};
}

async function compare() {
  $('curves').hidden = false;
  $('side').hidden = false;
  const cols = names.map(column);
  $('columns').replaceChildren(...cols.map(c => c.box));
  const query = names.map(n => 'run=' + encodeURIComponent(n)).join('&');
  async function refresh() {
    try {
      const versions = await Promise.all(cols.map(c => c.update()));
      const src = '/api/compare/best.svg?' + query + '&v=' + versions.join('.');
      if ($('best').getAttribute('src') !== src) $('best').src = src;
      problem(null);
    } catch (e) { problem(e); }
  }
  await refresh();
  setInterval(refresh, 5000);
}

(names.length < 2 ? picker() : compare()).catch(problem);
