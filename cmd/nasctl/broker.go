package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/nasctl/nasctl/cluster"
	"github.com/nasctl/nasctl/internal/shell"
	"github.com/nasctl/nasctl/search"
	"github.com/urfave/cli/v2"
)

// tokenEnv holds the broker token, which keeps it out of process listings.
const tokenEnv = "NASCTL_BROKER_TOKEN"

// brokerFlags reach a broker (nasctl worker, and a search's --broker).
func brokerFlags(urlUsage string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "broker", Usage: urlUsage},
		&cli.StringFlag{Name: "broker-token", EnvVars: []string{tokenEnv}, Usage: "the broker's token (or set " + tokenEnv + ")"},
		&cli.StringFlag{Name: "broker-nkey", Usage: "file holding a user NKEY seed the broker trusts (nasctl server --new-nkey makes one)"},
		&cli.StringFlag{Name: "broker-tls-ca", Usage: "PEM file of the authority that signed the broker's certificate (implies TLS)"},
	}
}

// embeddedFlags configure the broker a search starts with --broker embedded.
func embeddedFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "broker-listen", Value: cluster.DefaultListen, Usage: "--broker embedded: where workers connect (a non-loopback address needs --broker-token)"},
		&cli.StringFlag{Name: "broker-store", Usage: "--broker embedded: folder of the broker's files (default DIR/.broker, beside the runs)"},
	}
}

// brokerOptions say where a search's trials go: nowhere (URL empty: they
// train here), a broker at URL, or one embedded in the driver.
type brokerOptions struct {
	URL    string
	Client cluster.ClientOptions
	// Listen and Store configure the embedded broker.
	Listen, Store string
}

func (o brokerOptions) embedded() bool { return o.URL == "embedded" }

// resumeCommand is the command that continues the run in dir: with the
// broker flags it was searched with (credentials in the address left out,
// the token by the variable that holds it).
func (o brokerOptions) resumeCommand(kind search.Kind, dir string) string {
	cmd := fmt.Sprintf("nasctl search %s --resume %s", kind, shell.Quote(dir))
	switch {
	case o.URL == "":
		return cmd
	case o.embedded():
		cmd += " --broker embedded"
		for _, f := range []struct{ name, v string }{{"broker-listen", o.Listen}, {"broker-store", o.Store}} {
			if f.v != "" {
				cmd += " --" + f.name + " " + shell.Quote(f.v)
			}
		}
		return o.withToken(cmd)
	}
	return o.withCredentials(cmd + " --broker " + shell.Quote(cluster.RedactURL(o.URL)))
}

// jobsCommand is the command that lists the jobs on the broker, with the
// credentials this command was given.
func (o brokerOptions) jobsCommand() string {
	return o.withCredentials("nasctl jobs --broker " + shell.Quote(cluster.RedactURL(o.URL)))
}

// dropCommand is the command that removes run's jobs from the broker.
func (o brokerOptions) dropCommand(run string) string {
	return o.jobsCommand() + " --drop " + shell.Quote(run)
}

// withCredentials adds to cmd the credentials this command was given: the
// TLS authority and NKEY seed files, and the token by the variable that
// holds it.
func (o brokerOptions) withCredentials(cmd string) string {
	if o.Client.TLSCA != "" {
		cmd += " --broker-tls-ca " + shell.Quote(o.Client.TLSCA)
	}
	if o.Client.NKeySeed != "" {
		cmd += " --broker-nkey " + shell.Quote(o.Client.NKeySeed)
	}
	return o.withToken(cmd)
}

// withToken puts the token's variable before cmd when a token was given.
func (o brokerOptions) withToken(cmd string) string {
	if o.Client.Token != "" {
		return tokenEnv + "=<the broker's token> " + cmd
	}
	return cmd
}

// brokerOptionsOf reads the broker flags of the command, refusing those
// that cannot go together.
func brokerOptionsOf(c *cli.Context) (brokerOptions, error) {
	o := brokerOptions{URL: c.String("broker"), Listen: c.String("broker-listen"), Store: c.String("broker-store")}
	o.Client = cluster.ClientOptions{URL: o.URL, Token: c.String("broker-token"), NKeySeed: c.String("broker-nkey"), TLSCA: c.String("broker-tls-ca")}
	switch {
	case !o.embedded() && (c.IsSet("broker-listen") || c.IsSet("broker-store")):
		return o, usagef("--broker-listen and --broker-store configure --broker embedded")
	case o.embedded() && (o.Client.NKeySeed != "" || o.Client.TLSCA != ""):
		return o, usagef("--broker embedded takes a token (--broker-token) only; for NKEYs or TLS run nasctl server and give its address to --broker")
	case o.URL == "" && (o.Client.NKeySeed != "" || o.Client.TLSCA != ""):
		return o, usagef("--broker-nkey and --broker-tls-ca go with --broker URL")
	case o.URL != "" && !o.embedded():
		if err := cluster.CheckURL(o.URL); err != nil {
			return o, usagef("--broker: %v", err)
		}
	case o.embedded():
		// The listen rules, before any data is loaded.
		if err := (cluster.ServerOptions{Listen: o.Listen, Store: ".", Token: o.Client.Token}).Check(); err != nil {
			return o, usagef("--broker embedded: %v%s", err, credentialsHint(err, "--broker-token or "+tokenEnv))
		}
	}
	return o, nil
}

// distributed makes the executor that sends cfg's trials to workers
// through the broker, starting an embedded one first when asked to. The
// driver loads the data too: it sends it to the broker and tests the final
// models itself, on its CPU whatever device the trials train on.
func (e *executors) distributed(cfg search.Config) (search.Executor, error) {
	here := cfg
	here.Device = "cpu"
	local, err := e.loadLocal(here)
	if err != nil {
		return nil, err
	}
	if err := e.connect(cfg); err != nil {
		return nil, err
	}
	e.say("checking that the broker holds the dataset (it is sent the first time only)")
	x, err := cluster.NewExecutor(e.ctx, e.conn, cfg, local)
	if err != nil {
		return nil, err
	}
	x.Say, x.StartWorker = e.warn, e.workerCommand(cfg.Device)
	e.remote = x
	x.SayIfNoWorker(e.ctx)
	return x, nil
}

// connect reaches the broker of the options, or starts the embedded one.
func (e *executors) connect(cfg search.Config) error {
	o := e.broker
	if !o.embedded() {
		o.Client.Name, o.Client.Log = "nasctl search "+cfg.Name, e.warn
		var err error
		e.conn, err = cluster.Connect(e.ctx, o.Client)
		return err
	}
	store := o.Store
	if store == "" {
		store = filepath.Join(cfg.Dir, ".broker")
	}
	srv, err := cluster.StartServer(e.ctx, cluster.ServerOptions{Listen: o.Listen, Store: store, Token: o.Client.Token})
	if err != nil {
		return err
	}
	e.server = srv
	e.say("broker embedded: listening on %s, files in %s", srv.URL(), store)
	e.conn, err = srv.Connect(e.ctx, "nasctl search "+cfg.Name)
	return err
}

// workerCommand is the command that starts a worker for the driver's
// broker, with the credentials the driver itself needed.
func (e *executors) workerCommand(device string) string {
	cmd := fmt.Sprintf("nasctl worker --broker %s --device %s", e.workerURL(), device)
	c := e.broker.Client
	if c.TLSCA != "" {
		cmd += " --broker-tls-ca " + shell.Quote(c.TLSCA)
	}
	if c.NKeySeed != "" {
		cmd += " --broker-nkey <a seed the broker accepts>"
	}
	if c.Token != "" {
		cmd = tokenEnv + "=<the broker's token> " + cmd
	}
	return cmd
}

// workerURL is the broker address to give workers.
func (e *executors) workerURL() string {
	if e.server != nil {
		return e.server.RemoteURL()
	}
	return e.conn.URL()
}

// closeBroker releases the executor, the connection and the embedded
// broker, in that order.
func (e *executors) closeBroker() {
	if e.remote != nil {
		e.remote.Close()
	}
	if e.conn != nil {
		e.conn.Close()
	}
	if e.server != nil {
		e.server.Close()
	}
}

// credentialsHint names the flags that give a broker credentials, after
// its refusal to listen without them.
func credentialsHint(err error, flags string) string {
	if errors.Is(err, cluster.ErrNoCredentials) {
		return " (" + flags + ")"
	}
	return ""
}
