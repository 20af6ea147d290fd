// Command companin is the one binary of Companin: the server (API, projectors
// and workers in one process) and the operator's tools around it.
//
//	companin serve                                  run the server
//	companin migrate                                apply database migrations
//	companin org create --name NAME [--allowed-origin URL]...
//	companin org list | update | credentials create|list|revoke
//	companin projections rebuild [NAME]             replay the log into read models
//	companin projections parked | retry ID|--all    events projections could not apply
//	companin events export [--after POS] [--types A,B]   the log as NDJSON
//
// Settings come from the environment (see Config). Without DATABASE_URL every
// command uses an embedded PostgreSQL under COMPANIN_DATA_DIR.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `companin: an event-sourced customer assistant backend.

Usage:
  companin serve                                     run the API, projections and workers
  companin migrate                                   apply the database migrations
  companin org create --name NAME [--allowed-origin URL]...
                                                     create an organization and its API key
  companin org list                                  the organizations, one JSON object per line
  companin org update ORG [--add-origin URL]... [--remove-origin URL]...
                                                     change the origins the widget may run on
  companin org credentials create ORG                one more API key (the secret is shown once)
  companin org credentials list ORG                  the organization's client ids, revoked ones too
  companin org credentials revoke ORG CLIENT_ID      stop a key from working (on every server within seconds)
                                                     ORG is the organization id or one of its client ids
  companin projections rebuild [NAME]                replay the event log into the read models
                                                     (all of them, or the one named)
  companin projections parked                        list the events projections parked (JSON lines)
  companin projections retry ID|--all                apply parked events again after a fix
  companin events export [--after POSITION] [--types A,B] [--stream S] [--organization ID]
                                                     write the event log to stdout as NDJSON

Environment: DATABASE_URL (unset: embedded PostgreSQL under COMPANIN_DATA_DIR, default ./.companin),
COMPANIN_ADDR (default :8080), COMPANIN_EVENTSTORE (postgres|esdb), COMPANIN_ESDB_URL,
COMPANIN_JWT_SECRET, COMPANIN_RATE_LIMIT_PER_HOUR, COMPANIN_REPLY_WAIT, COMPANIN_LLM_BASE_URL,
COMPANIN_LLM_API_KEY, COMPANIN_LLM_MODEL, COMPANIN_FETCH_ALLOW_PRIVATE. See README.md.
`

// errUsage marks a command line we cannot run; main prints the usage for it
// and exits with 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts a graceful shutdown; a second one kills at once
	// (the embedded PostgreSQL's watcher still stops it cleanly).
	go func() { <-ctx.Done(); stop() }()
	// A server started by a parent that dies (`go run` killed by a process
	// manager) stops as if it had got SIGTERM, so nothing is left orphaned.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go watchParent(ctx, cancel)
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit status: 0 done, 1
// failed, 2 bad usage.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cfg, err := LoadConfig(getenv)
	if err != nil {
		// A bad setting is a failure to run, not a bad command line: 1.
		fmt.Fprintf(stderr, "companin: configuration:\n%v\n", err)
		return 1
	}
	var cmdErr error
	switch args[0] {
	case "serve":
		cmdErr = noArgs("serve", args[1:], func() error { return serve(ctx, cfg, log) })
	case "migrate":
		cmdErr = noArgs("migrate", args[1:], func() error { return migrate(ctx, cfg, log) })
	case "org":
		cmdErr = orgCommand(ctx, cfg, log, args[1:], stdout, stderr)
	case "projections":
		cmdErr = projectionsCommand(ctx, cfg, log, args[1:], stdout, stderr)
	case "events":
		cmdErr = eventsCommand(ctx, cfg, log, args[1:], stdout, stderr)
	default:
		cmdErr = fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	switch {
	case cmdErr == nil:
		return 0
	case errors.Is(cmdErr, flag.ErrHelp):
		return 0
	case errors.Is(cmdErr, errUsage):
		fmt.Fprintf(stderr, "companin: %v\n\n%s", cmdErr, usage)
		return 2
	default:
		fmt.Fprintf(stderr, "companin: %v\n", cmdErr)
		return 1
	}
}

func noArgs(name string, args []string, f func() error) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %s: %v", errUsage, name, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: %s takes no arguments, got %q", errUsage, name, fs.Args())
	}
	return f()
}

// subcommand returns the sub-command word of a command with several
// (org create, projections rebuild, events export).
func subcommand(cmd string, args []string, want string) ([]string, error) {
	if len(args) == 0 || args[0] != want {
		got := "nothing"
		if len(args) > 0 {
			got = fmt.Sprintf("%q", args[0])
		}
		return nil, fmt.Errorf("%w: %s: want %q, got %s", errUsage, cmd, want, got)
	}
	return args[1:], nil
}
