// The compare page: the best reward so far of two or more runs in one
// figure (their best validation accuracy, or balanced accuracy, when their
// rewards differ), and their final tables side by side; refreshed every
// five seconds.
import {getJSON, h, runURL, pageURL, num, int, badge, winnerRank, Table} from './app.js';

const $ = id => document.getElementById(id);
const names = [...new Set(new URLSearchParams(location.search).getAll('run'))]; // a run named twice once
const maxRuns = 10; // the most the server's figure draws (maxCompared)
const problem = e => { $('problem').textContent = e ? String(e.message || e) : ''; };

async function picker() {
  $('pick').hidden = false;
  const runs = await getJSON('/api/runs');
  const boxes = runs.map(r => h('label', {},
    h('input', {type: 'checkbox', name: 'run', value: r.name, checked: names.includes(r.name)}),
    ` ${r.name} (${r.kind}, ${r.trials} of ${r.planned} trials, ${r.status}` + (r.reward ? `; reward: ${r.reward})` : ')')));
  const submit = h('button', {type: 'submit', text: 'Compare'});
  const count = h('span', {class: 'muted', id: 'ticked'});
  $('picker').replaceChildren(h('p', {class: 'muted', text: `Tick 2 to ${maxRuns} runs.`}), ...boxes, h('p', {}, submit, ' ', count));
  // At the limit, the runs not ticked cannot be.
  const limit = () => {
    const ticked = $('picker').querySelectorAll('input:checked').length;
    for (const b of $('picker').querySelectorAll('input[type=checkbox]')) b.disabled = !b.checked && ticked >= maxRuns;
    submit.disabled = ticked < 2;
    count.textContent = `${ticked} ticked, at most ${maxRuns}`;
  };
  $('picker').addEventListener('change', limit);
  limit();
}

// The final table, and the leading architectures of a run without one.
const finalColumns = [
  {key: 'rank', label: 'Rank', num: true, cell: winnerRank},
  {key: 'arch', label: 'Architecture', cls: 'arch'},
  {key: 'params', label: 'Params', title: 'parameters', num: true, cell: f => int(f.params)},
  {key: 'val_accuracy', label: 'Val. acc.', num: true, cell: f => num(f.val_accuracy)},
  {key: 'test_accuracy', label: 'Test acc.', num: true, cell: f => f.status === 'ok' ? num(f.test_accuracy) + (f.at_chance ? ' (at chance)' : '') : f.status},
];
const topColumns = [
  {key: 'rank', label: 'Rank', num: true},
  {key: 'arch', label: 'Architecture', cls: 'arch'},
  {key: 'reward', label: 'Mean reward', num: true, cell: t => num(t.reward)},
  {key: 'samples', label: 'Samples', num: true},
];

// balanced: the run d ranks by balanced accuracy (train.metric), so its
// validation accuracies are that.
const balanced = d => d.metric === 'balanced_accuracy';

// column is one run's side: its facts and its final table, or its
// leading architectures while it has no final models. Its tables are kept
// across refreshes, and with them the sort the user chose.
function column(name) {
  const facts = h('p', {class: 'muted'});
  const caption = h('p', {class: 'muted'});
  const table = h('table');
  const box = h('div', {dataset: {run: name}},
    h('h3', {}, h('a', {href: pageURL(name), text: name}), ' ', h('span', {class: 'status'})), facts, caption, h('div', {class: 'scroll-x'}, table));
  const tables = {};
  let drawn = null;
  let run = null; // the run as last drawn: what a winner was picked by changes once a latency-aware run's finals are timed
  // draw shows the run d; byReward: the runs compared share its reward.
  // Only a change is drawn: a redraw would clear the user's selection.
  function draw(d, byReward) {
    const key = [d.version, d.status, byReward].join(' ');
    if (drawn === key) return;
    run = d;
    drawn = key;
    box.querySelector('.status').replaceChildren(badge(d.status));
    const best = byReward ? `best reward ${num(d.best_reward)} (${d.reward})`
      : d.problem ? `best score ${num(d.best_score)} (${d.reward}; its reward: best ${num(d.best_reward)})`
      : !d.best_arch ? `no trial evaluated (its reward: ${d.reward})`
      : `best val. ${balanced(d) ? 'balanced ' : ''}accuracy ${num(d.best_val_accuracy)} (its reward: ${d.reward}, best ${num(d.best_reward)})`;
    facts.replaceChildren(`${d.kind}: ${d.trials} of ${d.planned} trials, ${best}` +
      (d.winner_arch ? `, winner's test accuracy ${num(d.best_test_accuracy)} (picked by validation${d.winner_at_chance ? '; no better than chance' : ''})` : ''),
      ...(d.best_download ? [' · ', h('a', {href: d.best_download, download: '', text: 'best.onnx'})] : []));
    const finals = ((d.report && d.report.finals) || []).map(f => Object.assign({winner: f.arch === d.winner_arch}, f));
    const kind = finals.length ? 'final' : 'top';
    caption.textContent = finals.length ? 'Final models (retrained, then tested):'
      : d.status === 'failed' ? (d.failed ? `No final models: the search ended with an error (${d.failed}).` : 'No final models: no trial of this run was evaluated.')
      : d.problem ? `No final models (scored by ${d.problem}, no final phase); the leading architectures of the search:`
      : 'No final models yet; the leading architectures of the search:';
    if (!tables[kind]) {
      const columns = kind === 'top' ? topColumns
        : finalColumns.map(c => c.key === 'rank' ? Object.assign({}, c, {cell: f => winnerRank(f, run.report && run.report.best_by)}) : c);
      tables[kind] = new Table(table, columns,
        {empty: 'No architecture evaluated yet.', rowProps: f => ({class: f.winner ? 'winner' : null})});
      if (kind === 'final' && balanced(d)) tables[kind].relabel('val_accuracy', 'Val. bal. acc.', 'validation balanced accuracy, retrained: the mean of the classes\' recalls');
    }
    tables[kind].setRows(finals.length ? finals : (d.report && d.report.top) || []);
  }
  return {box, draw};
}

// The runs by agent (GET /api/compare): shown when they hold two agents or
// more; runs that cannot be compared so (of two kinds, say) hide it.
const agentColumns = [
  {key: 'agent', label: 'Agent', value: g => g.order}, // the API's order, random search last as the runs put it
  {key: 'runs', label: 'Runs', num: true},
  {key: 'runs_with_finals', label: 'With finals', title: 'runs whose final phase is complete: those the figures count', num: true},
  {key: 'best_five_mean_test_accuracy', label: 'Five best, test', title: "mean over the runs of the five best finals' mean test accuracy", num: true,
    cell: g => g.runs_with_finals ? pct(g.best_five_mean_test_accuracy) : '-'},
  {key: 'best_five_sd', label: 'SD', title: 'standard deviation between the runs, in points', num: true,
    cell: g => g.best_five_sd !== undefined ? (100 * g.best_five_sd).toFixed(3) : '-'},
];
const pct = v => (100 * v).toFixed(3) + '%';
const signed = v => (v >= 0 ? '+' : '') + (100 * v).toFixed(3);
let agentTable = null;
function showAgents(c) {
  $('agents').dataset.agents = c ? c.agents.length : 'none'; // what was last shown, for the tests
  $('agents').hidden = !c || c.agents.length < 2;
  if ($('agents').hidden) return;
  if (!agentTable) agentTable = new Table($('agent-table'), agentColumns);
  agentTable.setRows(c.agents.map((g, order) => Object.assign({order}, g)));
  const group = agent => c.agents.find(g => g.agent === agent);
  $('leads').replaceChildren(...(c.leads || []).map(l => {
    const seeds = Object.entries(l.per_seed || {}).sort((a, b) => a[0] - b[0]).map(([s, v]) => `seed ${s} ${signed(v)}`);
    const [a, o] = [group(l.agent), group(l.over)];
    const verdict = a.best_five_sd === undefined || o.best_five_sd === undefined ? '; the spread between seeds needs two runs of each with finals'
      : `: ${!l.beyond_spread ? 'within' : l.lead > 0 ? 'ahead by more than' : 'behind by more than'} the spread between seeds (sds ${(100 * a.best_five_sd).toFixed(3)} and ${(100 * o.best_five_sd).toFixed(3)})`;
    return h('div', {text: `${l.agent} minus ${l.over}: ${signed(l.lead)} points` + (seeds.length ? ` (${seeds.join(', ')})` : '') + verdict});
  }), ...(c.leads ? [] : [h('div', {class: 'muted', text: 'No lead: ' + c.agents.filter(g => !g.runs_with_finals).map(g => g.agent).join(' and ') + ' without a run whose final phase is complete.'})]),
  ...(c.settings_differ ? [h('div', {class: 'error', text: `The runs differ in ${c.settings_differ.join(', ')} besides name, seed and agent: not a matched comparison.`})] : []));
}

async function compare() {
  if (names.length > maxRuns) {
    problem(`${names.length} runs named: the page compares at most ${maxRuns}; untick some at /compare`);
  }
  $('curves').hidden = false;
  $('side').hidden = false;
  const cols = names.map(column);
  $('columns').replaceChildren(...cols.map(c => c.box));
  const query = names.map(n => 'run=' + encodeURIComponent(n)).join('&');
  // The figure is an <img>: an error the server answers instead shows here.
  $('best').onerror = () => getJSON($('best').src).then(() => {}, problem);
  async function refresh() {
    try {
      const runs = await Promise.all(names.map(n => getJSON(runURL(n))));
      const byReward = new Set(runs.map(d => d.reward)).size === 1;
      const metrics = new Set(runs.map(balanced));
      const val = metrics.size > 1 ? 'validation score' : metrics.has(true) ? 'validation balanced accuracy' : 'validation accuracy';
      const what = byReward ? `Best reward so far (${runs[0].reward})`
        : `Best ${val} so far: the runs' rewards differ (` + runs.map(d => `${d.name}: ${d.reward}`).join('; ') + ')' +
          (metrics.size > 1 ? "; each line is its run's own metric, accuracy or balanced accuracy" : '');
      if ($('what').textContent !== what) $('what').textContent = what;
      runs.forEach((d, i) => cols[i].draw(d, byReward));
      const src = '/api/compare/best.png?' + query + '&v=' + runs.map(d => d.version).join('.');
      if ($('best').getAttribute('src') !== src) {
        $('best').src = src;
        showAgents(await getJSON('/api/compare?' + query).catch(() => null)); // only as the runs change
      }
      if (names.length <= maxRuns) problem(null);
    } catch (e) { problem(e); }
  }
  await refresh();
  setInterval(refresh, 5000);
}

(names.length < 2 ? picker() : compare()).catch(problem);
