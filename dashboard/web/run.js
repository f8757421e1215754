// The run page: progress, figures, trials, leading architectures, final
// models and configuration of one run, kept up to date by the run's event
// stream without reloading.
import {getJSON, getText, h, runURL, num, int, epsText, secs, when, zone, badge, winnerRank, Table} from './app.js';

const $ = id => document.getElementById(id);
const name = decodeURIComponent(location.pathname.split('/').pop());
document.title = name + ' - nasctl';
$('name').textContent = name;

const trials = new Map(); // by id
const fresh = new Set(); // ids that came by event since the last drawing
let run = null, report = null, selected = null, statusFilter = '';
let version = null, finals = null, gone = false, bestDownload = '', earlierBest = {}, finalRows = [];

// Once the run is gone, its resources answer 404: the banner says why.
function problem(e) { if (!gone) $('problem').textContent = e ? String(e.message || e) : ''; }

// The trials table.
for (const s of ['ok', 'reused', 'refused', 'diverged', 'failed']) $('filter').append(h('option', {value: s, text: s}));
$('filter').addEventListener('change', e => { statusFilter = e.target.value; drawTrials(); });
// A greedy MetaQNN trial took no layer at random: what the agent has learnt,
// apart from what it explores.
const explore = t => t.temperature ? 'T ' + num(t.temperature, 2) :
  'ε ' + epsText(t.epsilon || 0) + (t.greedy ? ' greedy' : '');
const trialTable = new Table($('trials'), [
  {key: 'id', label: '#', num: true},
  {key: 'explore', label: 'ε / T', num: true,
    title: 'epsilon (MetaQNN) or temperature (REINFORCE) it was drawn at; greedy: no layer was drawn at random',
    value: t => t.temperature || t.epsilon || 0, cell: explore},
  {key: 'arch', label: 'Architecture', cls: 'arch'},
  {key: 'status', label: 'Status', title: 'at chance: no better on validation than a network that answers one class whatever the image',
    cell: t => h('span', {class: 'st-' + t.status, text: t.status + (t.at_chance ? ' (at chance)' : ''), title: t.reason})},
  {key: 'reward', label: 'Reward', num: true, cell: t => num(t.reward)},
  {key: 'val_accuracy', label: 'Val. accuracy', num: true, title: 'best validation accuracy (or a problem\'s score)',
    value: t => t.val_accuracy || t.score, cell: t => t.val_accuracy ? num(t.val_accuracy) : (t.score ? num(t.score, 2) : '')},
  {key: 'params', label: 'Parameters', num: true, cell: t => int(t.params)},
  {key: 'macs', label: 'MACs', num: true, cell: t => int(t.macs)},
  {key: 'latency_ms', label: 'Latency ms', num: true, cell: t => t.latency_ms ? num(t.latency_ms) : ''},
  {key: 'epochs', label: 'Epochs', num: true, value: t => (t.epochs || []).length,
    title: 'epochs trained (best epoch); stopped: below the median of the earlier trials (median stopping)',
    cell: t => t.epochs ? t.epochs.length + (t.best_epoch ? ` (best ${t.best_epoch})` : '') + (t.pruned ? ' stopped' : '') : ''},
  {key: 'seconds', label: 'Seconds', num: true, cell: t => t.seconds ? num(t.seconds, 1) : ''},
  {key: 'reused_from', label: 'Reused from', num: true, cell: t => t.reused_from ? '#' + t.reused_from : ''},
], {sort: 'id', empty: 'No trials recorded yet.', filter: t => !statusFilter || t.status === statusFilter,
  rowProps: t => ({dataset: {id: t.id}, onclick: () => showTrial(t.id),
    class: ['clickable', t.id === selected ? 'selected' : '', fresh.has(t.id) ? 'fresh' : ''].join(' ')})});

// drawTrials redraws the table at most every 50 ms, however many trials
// arrive at once.
let drawing = null;
function drawTrials() {
  drawing = drawing || setTimeout(() => {
    drawing = null;
    trialTable.setRows([...trials.values()]);
    fresh.clear();
    const shown = $('trials').querySelectorAll('tbody tr[data-id]').length;
    $('shown').textContent = `${shown} of ${trials.size} trials`;
    drawFacts(); // its counts are the table's
  }, 50);
}

async function loadTrials() {
  try {
    const ts = await getJSON(runURL(name, 'trials'));
    for (const t of ts) trials.set(t.id, t);
    if (selected !== null && !trials.has(selected)) { selected = null; $('trial').hidden = true; }
    drawTrials();
  } catch (e) { problem(e); }
}

// The selected trial: its curves and epochs.
const epochTable = new Table($('epochs'), [
  {key: 'n', label: 'Epoch', num: true, cell: e => e.attempt ? `${e.epoch} (attempt ${e.attempt + 1})` : e.epoch},
  {key: 'lr', label: 'LR', num: true, cell: e => Number(e.lr).toExponential(1)},
  {key: 'train_loss', label: 'Train loss', num: true, cell: e => num(e.train_loss)},
  {key: 'train_accuracy', label: 'Train acc.', num: true, cell: e => num(e.train_accuracy)},
  {key: 'val_loss', label: 'Val. loss', num: true, cell: e => num(e.val_loss)},
  {key: 'val_accuracy', label: 'Val. acc.', num: true, cell: e => num(e.val_accuracy)},
  {key: 'seconds', label: 'Seconds', num: true, cell: e => num(e.seconds, 1)},
], {sort: 'n', empty: () => noCurves(trials.get(selected))});

// noCurves says why a trial has no learning curves.
function noCurves(t) {
  if (!t) return '';
  switch (t.status) {
    case 'reused': return `No learning curves: this trial took the result of trial #${t.reused_from}, whose curves are there.`;
    case 'refused': return 'No learning curves: this trial was refused before training' + (t.reason ? ` (${t.reason}).` : '.');
    case 'failed': return 'No learning curves: this trial failed before its first epoch' + (t.reason ? ` (${t.reason}).` : '.');
  }
  return t.score ? 'No learning curves: this trial was scored, not trained.' : 'No learning curves recorded for this trial.';
}

function showTrial(id) {
  const t = trials.get(id);
  if (!t) return;
  selected = id;
  drawTrials();
  $('trial').hidden = false;
  $('trial-title').textContent = `Trial ${t.id}: ${t.arch}`;
  // A trial without epochs gets the table's note, not empty axes.
  const curves = (t.epochs || []).length > 0;
  $('curve').closest('figure').hidden = !curves;
  if (curves) $('curve').src = runURL(name, 'trials', String(t.id), 'curves.png') + '?v=' + version;
  const facts = [t.status + (t.reason ? ` (${t.reason})` : ''), 'reward ' + num(t.reward)];
  if (t.params) facts.push(int(t.params) + ' parameters', int(t.macs) + ' MACs');
  if (t.restarts) facts.push(t.restarts + ' restart(s)');
  if (t.pruned) facts.push(`stopped after epoch ${(t.epochs || []).length}, below the median of the earlier trials`);
  if (t.seed) facts.push('seed ' + t.seed);
  if (t.reused_from) facts.push('result of trial #' + t.reused_from);
  if (t.worker) facts.push('trained on worker ' + t.worker);
  $('trial-facts').textContent = facts.join(' · ');
  epochTable.setRows((t.epochs || []).map((e, i) => Object.assign({n: i}, e)));
  $('trial').scrollIntoView({block: 'start'});
}

// The overview, from the run (events) and its report (fetched).
function fact(label, ...value) { return [h('dt', {text: label}), h('dd', {}, ...value)]; }
function drawFacts() {
  if (!run) return;
  // A run with an error and no kind could not be read: as the runs page says.
  $('status').replaceChildren(badge(run.error && !run.kind ? '' : run.status));
  // The trials and their counts by status come from the trials the table
  // holds (the run's event can be a moment ahead of them, or behind).
  const byStatus = {};
  for (const t of trials.values()) byStatus[t.status] = (byStatus[t.status] || 0) + 1;
  const counts = Object.entries(byStatus).map(([k, v]) => `${v} ${k}`).join(', ');
  const done = trials.size || run.trials;
  // Finals taken from an earlier plan were trained there, not in this phase.
  const finalSeconds = finalRows.reduce((sum, f) => sum + (f.reused ? 0 : f.seconds || 0), 0);
  const reused = finalRows.filter(f => f.reused).length;
  const spent = [report ? (secs(report.seconds) || '0 s') + (run.problem ? '' : ' in the trials') : '',
    finalSeconds ? `${secs(finalSeconds)} in the final phase` : '',
    reused ? `${reused} final model${reused > 1 ? 's' : ''} taken from an earlier plan` : ''].filter(Boolean).join(', ');
  const rows = [
    fact('Kind', run.kind + (report && report.method ? ': ' + report.method : '')),
    fact('Trials', h('span', {id: 'done', text: `${done} of ${run.planned}`}), counts ? ` (${counts})` : '',
      ' ', h('progress', {max: run.planned || 1, value: done})),
    fact('Best reward', run.best_arch ? num(run.best_reward) : '', run.best_arch ? h('span', {class: 'arch', text: '  ' + run.best_arch}) : ''),
    fact('Final models', ...finalFacts()),
    fact(run.problem ? 'Scoring time, all workers' : 'Training time, all workers', spent),
    fact(`Started (${zone})`, when(run.started)),
    fact(`Last update (${zone})`, when(run.updated)),
    fact(run.problem ? 'Problem' : 'Data', run.problem || run.data || ''),
  ];
  if (run.status === 'running' && run.started) {
    // The search's own estimate; the time since the run was made includes
    // any time it stood stopped before a resume.
    const eta = estimateEnd();
    rows.splice(rows.length - 1, 0, fact('Elapsed', h('span', {dataset: {since: run.started}, text: ago(run.started)}),
      ' since the run was made', eta ? [', ', h('span', {dataset: {until: eta}, text: left(eta)}),
        ` (nasctl search's estimate: done around ${when(new Date(eta).toISOString())})`] : ''));
  }
  if (report && report.earlier) {
    // Each with its best model, which a resume with more trials has no
    // other of until its final phase ends.
    rows.push(fact('Earlier plans', 'set aside in the run folder when its number of trials changed: ',
      ...report.earlier.flatMap((p, i) => [i ? ', ' : '', p,
        earlierBest[p] ? [' (', h('a', {href: earlierBest[p], download: '', text: 'its best.onnx'}), ')'] : ''])));
  }
  if (run.error) rows.push(fact(run.kind ? 'Damaged log' : 'Unreadable', h('span', {class: 'error', text: run.error})));
  if (run.failed && run.status !== 'running') rows.push(fact('Ended with an error', h('span', {class: 'error', text: run.failed}), `; nasctl search ${run.kind} --resume ${run.dir} goes on`));
  $('facts').replaceChildren(...rows.flat());
}

// estimateEnd is when the search's estimate says the run ends, in ms (0:
// no estimate). The estimate was made at the last update: it counts down
// from there, or from when the page heard of it if that update is long
// past (a run resumed after a pause has not recorded a trial since). It is
// kept while the update and the estimate are unchanged: the events of the
// final phase's epochs repeat them, and must not restart the count.
let anchor = {};
function estimateEnd() {
  const rem = run.remaining_seconds;
  if (!rem) return 0;
  if (anchor.updated === run.updated && anchor.rem === rem) return anchor.eta;
  let eta = Date.parse(run.updated) + rem * 1000;
  if (eta < run.received) eta = run.received + rem * 1000;
  anchor = {updated: run.updated, rem, eta};
  return eta;
}

// finalFacts says where the final phase stands. It only starts after the
// last trial; while it runs, since when, and each retraining's last epoch
// (at most every 30 s; none from remote workers), so that it does not look
// hung.
function finalFacts() {
  const done = run.final_models, planned = run.final_models_planned, running = run.status === 'running';
  if (run.failed && !running && !run.winner_arch) return [`none: the search ended with an error (${run.failed}); a resume goes on`];
  if (planned && done < planned) {
    if (run.trials < run.planned) {
      return [running ? `final phase not started: the best ${planned} are retrained after the last trial`
        : 'final phase not started; the search is stopped: resume it to continue'];
    }
    if (!running) return [`${done} of ${planned} retrained; stopped: resume the run to finish the final phase`];
    const progress = run.final_progress || [];
    const epochs = progress.map(p =>
      h('div', {class: 'muted', text: `#${p.rank} (trial ${p.trial}): epoch ${p.epoch} of at most ${p.max_epochs}, val. ${run.metric === 'balanced_accuracy' ? 'balanced ' : ''}accuracy ${num(p.val_accuracy)}, at ${when(p.time)}`}));
    // Since the earliest retraining in flight began (a resumed phase began
    // at the resume), else since the last trial.
    const since = progress.map(p => p.started).filter(Boolean).sort()[0] || run.last_trial;
    return [`retraining: ${done} of ${planned} done; final phase running since ${when(since)} (`,
      h('span', {dataset: {since}, text: ago(since)}), ' ago)', ...epochs];
  }
  if (run.final_models_untimed) {
    return [running ? `${done} retrained; timing them on this machine, by which the best is picked`
      : `${done} retrained, not yet timed: resume the run to time them (no best is picked until then)`];
  }
  if (run.winner_arch) {
    const by = report && report.best_by ? report.best_by : 'validation accuracy, ties by validation loss';
    return [`${done}; the winner (picked by ${by}) tests at ${num(run.best_test_accuracy)}`,
      run.winner_at_chance ? h('span', {class: 'error', text: ', no better than chance (a constant predictor): do not deploy it'}) : '',
      report && report.best_five ? `; the ${report.best_five} best by the same order average ${num(report.best_five_mean_test_accuracy)}` : '',
      bestDownload ? [' · ', h('a', {href: bestDownload, download: '', text: 'download best.onnx'})] : ''];
  }
  if (done && run.final_models_over_latency_limit) return [`${done}; every one timed over the latency limit: no best is picked`];
  if (done) return [`${done}; none trained to a model`];
  if (run.status === 'failed') return ['none: no trial was evaluated, so there is nothing to retrain'];
  if (run.problem) return ['none: this search scores architectures with ' + run.problem + ' (no training), so it has no final phase'];
  return [run.final_skipped ? 'none: the final phase is skipped (--skip-final)' : 'none yet'];
}

// ago is how long ago an ISO time was, left how long until a time in
// milliseconds; the [data-since] and [data-until] spans tick.
const ago = iso => secs(Math.max(1, (Date.now() - Date.parse(iso)) / 1000));
const left = ms => ms > Date.now() + 1000 ? `about ${secs((ms - Date.now()) / 1000)} left` : 'due now, by the estimate';
setInterval(() => {
  for (const e of document.querySelectorAll('[data-since]')) e.textContent = ago(e.dataset.since);
  for (const e of document.querySelectorAll('[data-until]')) e.textContent = left(Number(e.dataset.until));
}, 1000);

function drawFigures(figs) {
  const box = $('figures');
  if (figs.length === 0) box.replaceChildren(h('p', {class: 'muted', text: 'No figures yet: they are drawn once a trial is evaluated.'}));
  else box.querySelector('p')?.remove();
  for (const f of figs) {
    let fig = box.querySelector(`figure[data-name="${f.name}"]`);
    if (!fig) {
      fig = h('figure', {dataset: {name: f.name}}, h('img', {alt: f.title}), h('figcaption', {text: f.title}));
      box.append(fig);
    }
    fig.querySelector('figcaption').textContent = f.title; // a bench's note can come and go
    const src = f.url + '?v=' + version;
    const img = fig.querySelector('img');
    if (img.getAttribute('src') !== src) img.src = src;
  }
}

const topTable = new Table($('top'), [
  {key: 'rank', label: 'Rank', num: true},
  {key: 'reward', label: 'Mean reward', num: true, cell: t => num(t.reward)},
  {key: 'samples', label: 'Samples', num: true},
  {key: 'first_trial', label: 'First trial', num: true, cell: t => '#' + t.first_trial},
  {key: 'arch', label: 'Architecture', cls: 'arch'},
], {empty: 'No architecture has been evaluated yet.'});

// loadDetail fetches the report and the figure list, at most every 1.5 s.
let detailTimer = null, detailAt = 0;
function loadDetail() {
  detailTimer = detailTimer || setTimeout(async () => {
    detailTimer = null;
    detailAt = Date.now();
    try {
      const d = await getJSON(runURL(name));
      report = d.report;
      bestDownload = d.best_download || '';
      earlierBest = d.earlier_best || {};
      drawFacts();
      drawFigures(d.figures);
      topTable.setRows(report ? report.top || [] : []);
    } catch (e) { problem(e); }
  }, Math.max(0, detailAt + 1500 - Date.now()));
}

const finalTable = new Table($('final'), [
  {key: 'rank', label: 'Rank', num: true, cell: f => winnerRank(f, report && report.best_by)},
  {key: 'arch', label: 'Architecture', cls: 'arch'},
  {key: 'params', label: 'Parameters', num: true, cell: f => int(f.params)},
  {key: 'macs', label: 'MACs', num: true, cell: f => int(f.macs)},
  {key: 'search_val_accuracy', label: 'Search val. acc.', num: true, cell: f => num(f.search_val_accuracy)},
  {key: 'val_accuracy', label: 'Val. acc.', num: true, cell: f => num(f.val_accuracy)},
  {key: 'val_loss', label: 'Val. loss', num: true, title: 'validation loss: of two models with the same validation accuracy, the lower wins',
    cell: f => f.val_loss === undefined ? '' : Number(f.val_loss).toPrecision(3)},
  {key: 'test_accuracy', label: 'Test acc.', num: true, cell: f => f.status === 'ok' ? num(f.test_accuracy) + (f.at_chance ? ' (at chance)' : '') : f.status},
  {key: 'latency_ms', label: 'Latency ms', num: true, title: "the search's figure: predicted, or timed during the search",
    cell: f => f.latency_ms ? num(f.latency_ms) : ''},
  {key: 'measured_latency_ms', label: 'Timed ms', num: true, title: 'batch-1 median timed on the search machine after the final phase; the best is picked by it',
    cell: f => f.measured_latency_ms === undefined ? '' : num(f.measured_latency_ms)},
  {key: 'lowest_recall', label: 'Lowest recall', num: true, value: f => f.lowest_recall ? f.lowest_recall.right / f.lowest_recall.images : undefined,
    title: "the class the model answers right least often on the test images: on imbalanced classes a high accuracy can hide a class missed",
    cell: f => { const c = f.lowest_recall; return c ? h('span', {title: (f.test_by_class || []).map(x => `${x.class}: ${x.right} of ${x.images}`).join(', '),
      text: `${c.class} ${num(c.right / c.images)}`}) : ''; }},
  {key: 'bench', label: 'Bench ms', num: true, value: f => f.bench ? f.bench.p50_ms : undefined,
    title: 'nasctl bench on this file: batch-1 median (95th percentile) on the machine it ran on; * on its Pareto front of parameters, latency and accuracy',
    cell: f => f.bench ? h('span', {title: `median ${num(f.bench.p50_ms)} ms, 95th percentile ${num(f.bench.p95_ms)} ms` + (f.bench.pareto ? ', on the Pareto front of parameters, latency and accuracy' : ''),
      text: `${num(f.bench.p50_ms)} (${num(f.bench.p95_ms)})` + (f.bench.pareto ? ' *' : '')}) : ''},
  {key: 'seconds', label: 'Seconds', num: true, title: 'of its training; a model taken from an earlier plan of the run was trained there',
    cell: f => f.reused ? h('span', {title: `trained in ${f.reused} (${num(f.seconds, 1)} s), taken from there`, text: 'from ' + f.reused}) : num(f.seconds, 1)},
  {key: 'download', label: 'Model', sortable: false,
    cell: f => f.download ? h('a', {href: f.download, download: '', text: f.model.split('/').pop()}) : ''},
], {rowProps: f => ({class: f.winner ? 'winner' : null}), empty: () => !run ? '' : run.final_skipped ? `No final models: this run skips the final phase (--skip-final); nasctl search ${run.kind} --resume ${run.dir} --skip-final=false runs it.`
  : run.status === 'failed' && run.failed ? `No final models: the search ended with an error (${run.failed}); nasctl search ${run.kind} --resume ${run.dir} goes on.`
  : run.status === 'failed' ? 'No final models: no trial of this run was evaluated (every one refused, failed or diverged), so none will come.'
  : run.problem ? `No final models: this search scores architectures with ${run.problem} (no training), so it has no final phase.`
  : 'No final models yet: the best architectures are retrained after the last trial.'});

async function loadFinal() {
  try {
    finalRows = await getJSON(runURL(name, 'final'));
    finalTable.setRows(finalRows);
    drawFacts();
  } catch (e) { problem(e); }
}

// A run ranked by balanced accuracy (train.metric) says so in the columns
// that hold it: every validation accuracy of the run is the mean of the
// classes' recalls.
function nameMetric(r) {
  if (r.metric !== 'balanced_accuracy') return;
  const title = 'best validation balanced accuracy: the mean of the classes\' recalls';
  trialTable.relabel('val_accuracy', 'Val. bal. acc.', title);
  epochTable.relabel('val_accuracy', 'Val. bal. acc.', 'validation balanced accuracy: the mean of the classes\' recalls');
  finalTable.relabel('search_val_accuracy', 'Search val. bal. acc.', title + ', in the search');
  finalTable.relabel('val_accuracy', 'Val. bal. acc.', title + ', retrained');
}

function applyRun(r) {
  r.received = Date.now();
  run = r;
  nameMetric(r);
  document.body.dataset.runs = Number(document.body.dataset.runs || 0) + 1; // how many it heard (for tests)
  drawFacts();
  const changed = r.version !== version;
  if (changed) { version = r.version; loadDetail(); }
  // The finals' timings come after the last of them (final_latency.json).
  if (r.final_models !== finals || (changed && r.final_models > 0)) { finals = r.final_models; loadFinal(); }
}

// The page's connection to the run's events (not the run's status).
function setLive(on) {
  $('live').className = on ? 'on' : 'off';
  $('live').textContent = on ? 'watching' : 'reconnecting';
}

function connect() {
  const es = new EventSource(runURL(name, 'events'));
  // hello comes again when the log was rewritten: what the page holds may
  // be trials the log no longer has, so it starts over.
  es.addEventListener('hello', e => {
    setLive(true); problem(null); trials.clear(); applyRun(JSON.parse(e.data)); loadTrials();
    if (!config) loadConfig();
  });
  es.addEventListener('trial', e => {
    const t = JSON.parse(e.data);
    trials.set(t.id, t);
    fresh.add(t.id);
    drawTrials();
  });
  es.addEventListener('run', e => applyRun(JSON.parse(e.data)));
  es.addEventListener('gone', e => {
    es.close(); // or the browser would reconnect to a run that is not there
    gone = true;
    $('status').replaceChildren(h('span', {class: 'badge deleted', text: 'deleted'}));
    $('live').hidden = true;
    $('problem').textContent = '';
    $('banner').textContent = JSON.parse(e.data).error + '; the page shows what it had read before.';
    $('banner').hidden = false;
    document.querySelector('main').classList.add('gone');
  });
  // The browser reconnects by itself after a lost connection; hello then
  // reloads the trials. A refused one (no such run, yet: a page opened as
  // its search starts) it gives up: the page asks again every 3 s.
  es.onerror = () => {
    setLive(false);
    if (es.readyState !== EventSource.CLOSED || gone) return;
    getJSON(runURL(name)).then(() => {}, e => problem(e.message + '; the page looks again every 3 s'));
    setTimeout(connect, 3000);
  };
}

let config = '';
function loadConfig() {
  getText(runURL(name, 'config')).then(t => { config = t; $('config').textContent = t; }, problem);
}
loadConfig();
connect();
