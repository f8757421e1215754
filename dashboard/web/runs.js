// The runs page: every run of the folder, refreshed every two seconds.
import {getJSON, h, pageURL, num, secs, when, zone, badge, Table} from './app.js';

const picked = new Set();
const compare = document.getElementById('compare');
const problem = document.getElementById('problem');

const maxRuns = 10; // the most the compare page draws

function pick(name, on) {
  if (on) picked.add(name); else picked.delete(name);
  compare.disabled = picked.size < 2 || picked.size > maxRuns;
  compare.title = picked.size > maxRuns ? `${picked.size} ticked: compare at most ${maxRuns}` : '';
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
  // A run with an error and no kind could not be read ('': unreadable); one
  // with a kind has a damaged log line, and its counts are of the trials
  // before it.
  {key: 'status', label: 'Status', cell: r => badge(r.error && !r.kind ? '' : r.status)},
  {key: 'trials', label: 'Trials', cls: 'trials nowrap', title: 'done of planned (point at a running run for the time left)', value: r => r.trials / (r.planned || 1),
    cell: r => [h('span', {class: 'count', text: `${r.trials} / ${r.planned}`,
      title: r.status === 'running' && r.remaining_seconds ? `~${secs(r.remaining_seconds)} left, as nasctl search estimates it` : null}),
      h('progress', {max: r.planned || 1, value: r.trials})]},
  {key: 'best_reward', label: 'Best reward', num: true,
    title: "the best trial's reward, as its run defines it (point at a value): rewards of other definitions do not compare",
    cell: r => r.best_arch ? h('span', {title: 'reward: ' + r.reward, text: num(r.best_reward)}) : ''},
  {key: 'best_test_accuracy', label: 'Winner test accuracy', num: true, title: 'the final model picked by validation (winners/best.onnx)',
    cell: r => r.final_models ? num(r.best_test_accuracy) + (r.winner_at_chance ? ' (at chance)' : '') : ''},
  {key: 'started', label: `Started (${zone})`, cls: 'nowrap', cell: r => when(r.started)},
  {key: 'updated', label: `Last update (${zone})`, cls: 'nowrap', cell: r => when(r.updated)},
  {key: 'best_arch', label: 'Winner architecture', cls: 'arch', title: "the winner's (the final model picked by validation), else, marked search:, the best reward's in the search",
    value: r => r.winner_arch || r.best_arch,
    cell: r => r.error ? h('span', {class: 'error', text: (r.kind ? 'damaged: ' : 'unreadable: ') + r.error})
      : r.failed && !r.winner_arch ? h('span', {class: 'error', text: 'the search ended with an error: ' + r.failed})
      : r.winner_arch || (r.best_arch ? 'search: ' + r.best_arch : '')},
], {sort: 'updated', desc: true, empty: () => folder && !folder.exists ? `${folder.abs} does not exist (yet).` : 'No runs in this folder yet: start one with nasctl search.',
  rowProps: r => ({dataset: {name: r.name}})});

// The folder served, named in the header: a mistyped one shows no runs.
let folder = null;
getJSON('/api/folder').then(f => {
  folder = f;
  document.getElementById('folder').textContent = 'in ' + f.abs;
  if (!f.exists) table.render();
}, () => {});

// The rows are drawn again only when a run changed: a redraw clears the
// user's selection (an architecture being copied, say).
let drawn = '';
async function refresh() {
  try {
    const runs = await getJSON('/api/runs');
    const now = JSON.stringify(runs);
    if (now !== drawn) { drawn = now; table.setRows(runs); }
    document.getElementById('count').textContent = runs.length === 1 ? '1 run' : runs.length + ' runs';
    problem.textContent = '';
  } catch (e) {
    problem.textContent = 'cannot reach the dashboard: ' + e.message;
  }
}
refresh();
setInterval(refresh, 2000);
