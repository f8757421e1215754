// The runs page: every run of the folder, refreshed every two seconds.
import {getJSON, h, pageURL, num, when, badge, Table} from './app.js';

const picked = new Set();
const compare = document.getElementById('compare');
const problem = document.getElementById('problem');

function pick(name, on) {
  if (on) picked.add(name); else picked.delete(name);
  compare.disabled = picked.size < 2;
}
compare.addEventListener('click', () => {
  location.href = '/compare?' + [...picked].map(n => 'run=' + encodeURIComponent(n)).join('&');
});

const table = new Table(document.getElementById('runs'), [
  {key: 'pick', label: '', sortable: false, cell: r => h('input', {
    type: 'checkbox', checked: picked.has(r.name), 'aria-label': 'compare ' + r.name,
    onchange: e => pick(r.name, e.target.checked)})},
  {key: 'name', label: 'Run', cls: 'nowrap', cell: r => h('a', {href: pageURL(r.name), text: r.name})},
  {key: 'kind', label: 'Kind'},
  {key: 'status', label: 'Status', cell: r => badge(r.status)},
  {key: 'trials', label: 'Trials', cls: 'trials nowrap', title: 'done of planned', value: r => r.trials / (r.planned || 1),
    cell: r => [h('span', {class: 'count', text: `${r.trials} / ${r.planned}`}),
      h('progress', {max: r.planned || 1, value: r.trials})]},
  {key: 'best_reward', label: 'Best reward', num: true, cell: r => r.best_arch ? num(r.best_reward) : ''},
  {key: 'best_test_accuracy', label: 'Winner test accuracy', num: true, title: 'the final model picked by validation (winners/best.onnx)',
    cell: r => r.final_models ? num(r.best_test_accuracy) : ''},
  {key: 'started', label: 'Started', cls: 'nowrap', cell: r => when(r.started)},
  {key: 'updated', label: 'Last update', cls: 'nowrap', cell: r => when(r.updated)},
  {key: 'best_arch', label: 'Architecture', cls: 'arch', title: "the winner's, else the best reward's in the search",
    value: r => r.winner_arch || r.best_arch,
    cell: r => r.error ? h('span', {class: 'error', text: 'unreadable: ' + r.error})
      : r.winner_arch || (r.best_arch ? 'search: ' + r.best_arch : '')},
], {sort: 'updated', desc: true, empty: 'No runs in this folder yet: start one with nasctl search.',
  rowProps: r => ({dataset: {name: r.name}})});

async function refresh() {
  try {
    const runs = await getJSON('/api/runs');
    table.setRows(runs);
    document.getElementById('count').textContent = runs.length === 1 ? '1 run' : runs.length + ' runs';
    problem.textContent = '';
  } catch (e) {
    problem.textContent = 'cannot reach the dashboard: ' + e.message;
  }
}
refresh();
setInterval(refresh, 2000);
