package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/nasctl/nasctl/cluster"
	"github.com/urfave/cli/v2"
)

func serverCommand() *cli.Command {
	return &cli.Command{
		Name:      "server",
		Usage:     "run the broker that hands a search's trials to workers on other machines",
		ArgsUsage: " ",
		Description: `Runs a NATS server with JetStream (embedded in nasctl) until interrupted, and sets
up on it the stream, consumers and buckets that searches (--broker) and workers
(nasctl worker) use. Everything it holds survives a restart in --store. A stock
nats-server -js works as well; nasctl then sets up what it needs itself.

It listens on 127.0.0.1 unless --listen says otherwise; another address needs
credentials: a token (--token or NASCTL_BROKER_TOKEN) or the public NKEYs of
its users (--nkey, repeatable; --new-nkey FILE makes a user key). Give
--tls-cert and --tls-key to require TLS (a token otherwise crosses the network
in clear).

Examples:
  nasctl server --store /var/lib/nasctl-broker
  NASCTL_BROKER_TOKEN=$(openssl rand -hex 16) nasctl server --listen 0.0.0.0:4222 --store broker`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: cluster.DefaultListen, Usage: "address clients connect to, host:port"},
			&cli.StringFlag{Name: "store", Value: "nasctl-broker", Usage: "folder of the broker's files"},
			&cli.StringFlag{Name: "token", EnvVars: []string{tokenEnv}, Usage: "secret every client presents (or set " + tokenEnv + ")"},
			&cli.StringSliceFlag{Name: "nkey", Usage: "public NKEY (U...) of a user allowed in; repeatable"},
			&cli.StringFlag{Name: "tls-cert", Usage: "PEM certificate: clients must use TLS"},
			&cli.StringFlag{Name: "tls-key", Usage: "PEM key of --tls-cert"},
			&cli.DurationFlag{Name: "ack-wait", Value: 60 * time.Second, Usage: "how long a job stays with a worker that stopped answering"},
			&cli.IntFlag{Name: "max-deliver", Value: 3, Usage: "deliveries of a job before it is recorded as failed"},
			&cli.StringFlag{Name: "new-nkey", Usage: "write a new user NKEY seed to this file (mode 0600), print its public key and exit"},
		},
		Action: func(c *cli.Context) error {
			if err := noArgs(c, ""); err != nil {
				return err
			}
			if f := c.String("new-nkey"); f != "" {
				return newNKey(f, c.App.Writer)
			}
			if c.Duration("ack-wait") < time.Second || c.Int("max-deliver") < 1 {
				return usagef("--ack-wait must be at least 1s and --max-deliver at least 1")
			}
			opts := cluster.ServerOptions{Listen: c.String("listen"), Store: c.String("store"), Token: c.String("token"),
				NKeys: c.StringSlice("nkey"), TLSCert: c.String("tls-cert"), TLSKey: c.String("tls-key"),
				Settings: cluster.Settings{AckWait: c.Duration("ack-wait"), MaxDeliver: c.Int("max-deliver")}}
			if err := opts.Check(); err != nil {
				return usagef("%v%s", err, credentialsHint(err, "--token or "+tokenEnv+"; --nkey"))
			}
			return runServer(c.Context, opts, c.App.ErrWriter)
		},
	}
}

// runServer runs the broker until ctx is cancelled.
func runServer(ctx context.Context, opts cluster.ServerOptions, errOut io.Writer) error {
	opts.Log = lineLogger(errOut, "broker: ")
	srv, err := cluster.StartServer(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(errOut, "nasctl server: listening on %s, files in %s; start workers with:\n  %s\nCtrl-C stops.\n",
		srv.RemoteURL(), opts.Store, workerCommandLine(srv.RemoteURL(), opts))
	<-ctx.Done()
	srv.Close()
	fmt.Fprintf(errOut, "nasctl server: stopped; the jobs and results it holds are kept in %s for its next start\n", opts.Store)
	return nil
}

// workerCommandLine is the command that starts a worker of the broker at
// url, with the credentials it asks for named but not shown: the token is
// a secret the user chose, and an NKEY seed file is the user's.
func workerCommandLine(url string, opts cluster.ServerOptions) string {
	cmd := "nasctl worker --broker " + url + " --device cpu"
	switch {
	case opts.Token != "":
		cmd = tokenEnv + "=<this broker's token> " + cmd
	case len(opts.NKeys) > 0:
		cmd += " --broker-nkey <a seed file whose public key was given to --nkey>"
	}
	if opts.TLSCert != "" {
		cmd += " [--broker-tls-ca <the authority of " + opts.TLSCert + ", unless the system trusts it>]"
	}
	return cmd
}

// newNKey writes a user seed to a new file, readable by its owner only,
// and prints its public key.
func newNKey(file string, out io.Writer) error {
	seed, public, err := cluster.NewNKey()
	if err != nil {
		return err
	}
	// Never over an existing file: it may be the key users log in with.
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return usagef("--new-nkey: %s exists; remove it first, or give another file name", file)
	}
	if err != nil {
		return err
	}
	// Exactly 0600: the umask may have taken bits from it.
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(append(seed, '\n'))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(file)
		return fmt.Errorf("--new-nkey: %w", err)
	}
	fmt.Fprintf(out, "%s\n", public)
	return nil
}
