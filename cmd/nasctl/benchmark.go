package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nasctl/nasctl/controller"
	"github.com/nasctl/nasctl/controller/agentbench"
	"github.com/nasctl/nasctl/controller/problem"
	"github.com/nasctl/nasctl/internal/figure"
	"github.com/nasctl/nasctl/internal/progress"
	"github.com/nasctl/nasctl/natsbench"
	"github.com/nasctl/nasctl/search"
	"github.com/urfave/cli/v2"
)

// benchAgent is an agent `benchmark agents` can run. To add one, append an
// entry to benchAgents; reports list agents in this order.
type benchAgent struct {
	name  string
	usage string
	new   func(opts benchmarkAgentsOptions) controller.AgentFactory
}

var benchAgents = []benchAgent{
	{"random", "uniform random search", func(benchmarkAgentsOptions) controller.AgentFactory { return controller.NewRandomAgent }},
	{"reinforce", "the REINFORCE LSTM controller", func(o benchmarkAgentsOptions) controller.AgentFactory {
		return controller.ReinforceFactory(o.Reinforce)
	}},
	{"metaqnn", "MetaQNN's tabular Q-learning, its epsilon schedule scaled to the budget", func(o benchmarkAgentsOptions) controller.AgentFactory {
		return controller.QLearningFactory(o.QLearning, o.Schedule.Scale(o.Budget))
	}},
	{"evolution", "regularized evolution (Real et al. 2019)", func(o benchmarkAgentsOptions) controller.AgentFactory {
		return controller.EvolutionFactory(o.Evolution)
	}},
}

func benchAgentNames() []string {
	var names []string
	for _, a := range benchAgents {
		names = append(names, a.name)
	}
	return names
}

func benchmarkCommand() *cli.Command {
	return &cli.Command{
		Name:  "benchmark",
		Usage: "measure search agents on rewards that need no training",
		Subcommands: []*cli.Command{{
			Name:  "agents",
			Usage: "compare the agents' best score found after 50, 100, ... queries, over many seeds",
			Description: `Every agent searches the space once per seed (seeds --seed, --seed+1, ...); after
every query the best score found so far is recorded. The report gives, per agent
and query count, the mean and standard deviation over seeds of the best score and
the regret (optimum - mean best). Runs are independent and reproducible: the
same flags give the same numbers whatever the number of workers.

Spaces:
  natsbench  NAS-Bench-201 / NATS-Bench topology space (6 edges x 5 ops), embedded
             table of test accuracy after 200 epochs; score = accuracy in percent,
             reward seen by the agents = accuracy / 100
  mock       NASNet cells with --blocks blocks, the study's mock reward (optimum 0.998)

By default every proposal is a query, repeats included; with --free-repeats only the
first proposal of an architecture counts (repeats are answered from a cache), and a
run stops after 10 x --budget proposals.

The reinforce agent's configuration is a preset: natsbench (the default on natsbench:
Adam 2e-3 and an entropy bonus of 1e-3, tuned on seeds 1001-1050), paper (the default
on mock: Zoph & Le 2017, 2 x 35 LSTM, Adam 6e-4, EMA baseline, temperature 5.0 x 0.995
per episode down to 1.0) or study (the founding study's baseline, skip and clipping);
--controller-lr, --temperature, --temperature-decay, --min-temperature, --baseline,
--baseline-decay, --skip-below, --controller-batch and --entropy override it; a rate,
temperature, decay or batch must be positive (0 is refused), and --entropy 0 or
--skip-below 0 turns that term off.
The metaqnn agent follows --q-schedule (Baker et al.'s by default) scaled to the
budget, with Q-learning step size --q-alpha 0.3 (Baker et al.'s 0.01 ties random
search at 300 queries on natsbench) and --q-replay trajectories replayed per query;
--q-target return makes every step learn the reward instead of the next state's best
value, and --q-target mean makes every step worth the mean reward of the queries that
took it (no replay).
The evolution agent is regularized evolution (Real et al. 2019): --evo-population
random architectures, then each query mutates one decision of the best of
--evo-sample members drawn from the population, whose oldest member leaves.
Example: nasctl benchmark agents --space natsbench --dataset cifar10 --budget 300 --seeds 50 --out plots`,
			Flags: append([]cli.Flag{
				&cli.StringFlag{Name: "space", Value: "natsbench", Usage: "search space and reward: " + strings.Join(problem.Names, " or ")},
				&cli.StringFlag{Name: "dataset", Value: "cifar10", Usage: "natsbench accuracy column: " + strings.Join(natsbench.DatasetNames(), ", ")},
				&cli.IntFlag{Name: "blocks", Value: 2, Usage: "mock: blocks per cell (B), 1 to 10"},
				&cli.IntFlag{Name: "budget", Value: 300, Usage: "queries per run"},
				&cli.IntFlag{Name: "seeds", Value: 50, Usage: "runs per agent"},
				&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "first seed"},
				&cli.StringFlag{Name: "agents", Value: strings.Join(benchAgentNames(), ","), Usage: "comma-separated agents: " + strings.Join(benchAgentNames(), ", ")},
				&cli.StringFlag{Name: "queries", Value: "50,100,300", Usage: "comma-separated query counts to report (the budget is always added)"},
				&cli.StringFlag{Name: "out", Usage: "directory for the regret plot (regret.png and regret.svg), created if missing"},
				&cli.BoolFlag{Name: "json", Usage: "print a JSON list of {agent, queries, mean_best, sd_best, ...} instead of a table"},
				&cli.BoolFlag{Name: "free-repeats", Usage: "count only the first proposal of an architecture as a query"},
				&cli.IntFlag{Name: "workers", Usage: "runs at once (0: one per CPU); results do not depend on it"},
				&cli.StringFlag{Name: "q-schedule", Value: "baker2017", Usage: `metaqnn: epsilon schedule scaled to the budget, a preset (baker2017, study, cpu) or "EPS:MODELS,..."`},
				&cli.Float64Flag{Name: "q-alpha", Value: 0.3, Usage: "metaqnn: Q-learning step size (Baker et al.: 0.01; 0.3 measured best here, docs/search-quality.md)"},
				&cli.IntFlag{Name: "q-replay", Usage: "metaqnn: trajectories replayed after every query (0: Baker et al.'s 128; negative: none)"},
				&cli.IntFlag{Name: "q-redraw", Usage: "metaqnn: times a proposal that repeats a queried architecture is drawn again"},
				&cli.StringFlag{Name: "q-target", Value: controller.TargetMax, Usage: "metaqnn: what each step learns towards: max (Q-learning: the next state's best value), return (the reward) or mean (the mean reward of the queries that took the step; no replay)"},
				&cli.IntFlag{Name: "evo-population", Usage: "evolution: population (0: 20)"},
				&cli.IntFlag{Name: "evo-sample", Usage: "evolution: tournament size (0: a sixth of the population, at least 2)"},
				&cli.StringFlag{Name: "preset", Usage: "reinforce: configuration, " + strings.Join(controller.ReinforcePresetNames(), ", ") + " (default: natsbench on natsbench, paper on mock)"},
			}, presetDefaults(reinforceFlags())...),
			Action: func(c *cli.Context) error {
				if err := noArgs(c, ""); err != nil {
					return err
				}
				opts, err := benchmarkAgentsOptionsFrom(c)
				if err != nil {
					return err
				}
				opts.Progress = progress.Counter(c.App.ErrWriter, "benchmark: %d/%d runs")
				return runBenchmarkAgents(c.Context, opts, c.App.Writer)
			},
		}},
	}
}

type benchmarkAgentsOptions struct {
	Problem     *problem.Problem
	Budget      int
	Seeds       int
	FirstSeed   uint64
	Agents      []string
	Queries     []int
	Out         string
	JSON        bool
	FreeRepeats bool
	Workers     int
	Reinforce   controller.ReinforceConfig
	QLearning   controller.QConfig         // metaqnn's
	Evolution   controller.EvolutionConfig // evolution's
	Schedule    controller.EpsilonSchedule // metaqnn's, before scaling to the budget
	Progress    func(done, total int)      // nil: quiet
}

// benchmarkAgentsOptionsFrom parses and checks the flags; every mistake is a usage error.
func benchmarkAgentsOptionsFrom(c *cli.Context) (benchmarkAgentsOptions, error) {
	o := benchmarkAgentsOptions{
		Budget: c.Int("budget"), Seeds: c.Int("seeds"),
		FirstSeed: c.Uint64("seed"), Out: c.String("out"), JSON: c.Bool("json"),
		FreeRepeats: c.Bool("free-repeats"), Workers: c.Int("workers"),
	}
	space := c.String("space")
	if !slices.Contains(problem.Names, space) {
		return o, usagef("--space: unknown space %q (valid: %s)", space, strings.Join(problem.Names, ", "))
	}
	if c.IsSet("blocks") && space != "mock" {
		return o, usagef("--blocks does not apply to --space %s (the NATS-Bench cell is fixed); drop --blocks, or use --space mock", space)
	}
	if b := c.Int("blocks"); space == "mock" && (b < 1 || b > search.MaxBlocks) {
		return o, usagef("--blocks must be 1 to %d, got %d (the controller's network grows with the blocks: docs/limits.md)", search.MaxBlocks, b)
	}
	if _, err := natsbench.ParseDataset(c.String("dataset")); err != nil {
		return o, usagef("--dataset: %v", err)
	}
	if space != "natsbench" && c.IsSet("dataset") {
		return o, usagef("--dataset chooses a column of natsbench's table; --space %s has none", space)
	}
	var err error
	if o.Problem, err = problem.New(space, c.Int("blocks"), c.String("dataset")); err != nil {
		return o, err
	}
	preset := c.String("preset")
	if preset == "" {
		preset = search.DefaultNASNetPreset(space)
	}
	if o.Reinforce, err = controller.ReinforcePreset(preset); err != nil {
		return o, usagef("--preset: %v", err)
	}
	if o.Budget < 1 || o.Seeds < 1 {
		return o, usagef("--budget and --seeds must be positive, got %d and %d", o.Budget, o.Seeds)
	}
	if o.Workers < 0 {
		return o, usagef("--workers must not be negative, got %d", o.Workers)
	}
	for _, name := range strings.Split(c.String("agents"), ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(benchAgentNames(), name) {
			return o, usagef("--agents: unknown agent %q (valid: %s)", name, strings.Join(benchAgentNames(), ", "))
		}
		if !slices.Contains(o.Agents, name) {
			o.Agents = append(o.Agents, name)
		}
	}
	if err := checkAgentOnlyFlags(c, o.Agents); err != nil {
		return o, err
	}
	var beyond []string
	for _, f := range strings.Split(c.String("queries"), ",") {
		q, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || q < 1 {
			return o, usagef("--queries: %q is not a positive integer", strings.TrimSpace(f))
		}
		if q > o.Budget {
			beyond = append(beyond, strconv.Itoa(q))
		} else if !slices.Contains(o.Queries, q) {
			o.Queries = append(o.Queries, q)
		}
	}
	if len(beyond) > 0 && c.IsSet("queries") {
		fmt.Fprintf(c.App.ErrWriter, "--queries %s: beyond --budget %d, left out (raise --budget to report them)\n", strings.Join(beyond, ","), o.Budget)
	}
	if !slices.Contains(o.Queries, o.Budget) {
		o.Queries = append(o.Queries, o.Budget)
	}
	slices.Sort(o.Queries)
	if o.Schedule, err = controller.ParseSchedule(c.String("q-schedule")); err != nil {
		return o, usagef("--q-schedule: %v", err)
	}
	o.QLearning = controller.QConfig{Alpha: c.Float64("q-alpha"), Replay: c.Int("q-replay"), Redraw: c.Int("q-redraw"), Target: c.String("q-target")}
	if a := o.QLearning.Alpha; a < 0 || a > 1 {
		return o, usagef("--q-alpha %v: must be in (0, 1], or 0 for the default", a)
	}
	if err := o.QLearning.Check(); err != nil {
		return o, usagef("--q-redraw/--q-target: %v", err)
	}
	o.Evolution = controller.EvolutionConfig{Population: c.Int("evo-population"), Sample: c.Int("evo-sample")}
	budget := 0 // the default population may exceed a short budget: evolution is then random search
	if c.IsSet("evo-population") && slices.Contains(o.Agents, "evolution") {
		budget = o.Budget
	}
	if err := o.Evolution.WithDefaults(controller.EvolutionDefaultPopulation).Check(budget); err != nil {
		return o, usagef("--evo-population/--evo-sample: %v", err)
	}
	r := &o.Reinforce
	if err := applyReinforceFlags(c, r); err != nil {
		return o, err
	}
	if err := r.Validate(); err != nil {
		return o, usagef("%v", err)
	}
	return o, nil
}

// agentOnlyFlags names, for each agent that has settings of its own, the
// flags that set them.
func agentOnlyFlags() map[string][]string {
	return map[string][]string{
		"reinforce": append(reinforceFlagNames(), "preset"),
		"metaqnn":   {"q-schedule", "q-alpha", "q-replay", "q-redraw", "q-target"},
		"evolution": {"evo-population", "evo-sample"},
	}
}

// checkAgentOnlyFlags refuses a flag of an agent that agents leave out:
// the benchmark would run without it, and say nothing.
func checkAgentOnlyFlags(c *cli.Context, agents []string) error {
	for _, a := range benchAgents { // in a fixed order, for a fixed message
		for _, name := range agentOnlyFlags()[a.name] {
			if c.IsSet(name) && !slices.Contains(agents, a.name) {
				return usagef("--%s sets the %s agent, which --agents %s leaves out; add %s to --agents, or drop --%s",
					name, a.name, strings.Join(agents, ","), a.name, name)
			}
		}
	}
	return nil
}

// benchmarkRow is one line of the JSON report.
type benchmarkRow struct {
	Agent       string  `json:"agent"`
	Queries     int     `json:"queries"`
	MeanBest    float64 `json:"mean_best"`
	SDBest      float64 `json:"sd_best"`
	MeanRegret  float64 `json:"mean_regret"`
	OptimalRuns int     `json:"optimal_runs"`
	Seeds       int     `json:"seeds"`
	Optimum     float64 `json:"optimum"`
}

func runBenchmarkAgents(ctx context.Context, opts benchmarkAgentsOptions, out io.Writer) error {
	b := agentbench.Benchmark{
		Problem: opts.Problem, Budget: opts.Budget, Seeds: opts.Seeds, FirstSeed: opts.FirstSeed,
		FreeRepeats: opts.FreeRepeats, Workers: opts.Workers, Progress: opts.Progress,
	}
	title, unit := opts.Problem.Title, opts.Problem.Unit
	var agents []agentbench.NamedAgent
	for _, name := range opts.Agents {
		for _, a := range benchAgents {
			if a.name == name {
				agents = append(agents, agentbench.NamedAgent{Name: name, New: a.new(opts)})
			}
		}
	}
	start := time.Now()
	res, err := b.Run(ctx, agents)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	var plots []string
	if opts.Out != "" {
		p, err := agentbench.Regret(res, title, unit)
		if err != nil {
			return err
		}
		if plots, err = figure.Save(p, opts.Out, "regret"); err != nil {
			return err
		}
	}
	sums := res.Summarize(opts.Queries)
	if opts.JSON {
		rows := make([]benchmarkRow, len(sums))
		for i, s := range sums {
			rows[i] = benchmarkRow{Agent: s.Agent, Queries: s.Queries, MeanBest: s.MeanBest, SDBest: s.SDBest,
				MeanRegret: s.MeanRegret, OptimalRuns: s.Optimal, Seeds: s.Seeds, Optimum: res.Optimum}
		}
		return printJSON(out, rows)
	}
	queries := "every proposal is a query"
	if opts.FreeRepeats {
		queries = "repeated architectures are free"
	}
	fmt.Fprintf(out, "%s\nbudget %d queries, %d seeds (%d..%d), %s; %.1fs\n\n",
		title, opts.Budget, opts.Seeds, opts.FirstSeed, opts.FirstSeed+uint64(opts.Seeds)-1, queries, elapsed.Seconds())
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "agent\tqueries\tmean best\tsd\tregret\toptimum found\t")
	for _, s := range sums {
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.3f\t%d/%d\t\n", s.Agent, s.Queries, s.MeanBest, s.SDBest, s.MeanRegret, s.Optimal, s.Seeds)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, a := range res.Agents {
		if a.Stalled > 0 {
			fmt.Fprintf(out, "%s: %d runs stopped after %d proposals before the budget (repeats only)\n", a.Agent, a.Stalled, 10*opts.Budget)
		}
	}
	for _, p := range plots {
		fmt.Fprintf(out, "plot: %s\n", p)
	}
	return nil
}
