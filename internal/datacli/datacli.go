// Package datacli is `fjord group` and `fjord topic`: the data-plane tools
// for people without a JVM. They talk to any Kafka-protocol bootstrap (Fjord
// or Kafka) and mirror Kafka's kafka-consumer-groups.sh, kafka-topics.sh,
// kafka-configs.sh (topic configs) and the console producer and consumer:
// the same flag names where the Kafka tools have them, the same columns, and
// `--output json` for scripts.
package datacli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultBootstrap is the bootstrap used when neither --bootstrap nor
// FJORD_BOOTSTRAP gives one.
const DefaultBootstrap = "127.0.0.1:9092"

// Env is what a command takes from the process running it.
type Env struct {
	Stdin  io.Reader // records for `topic produce`
	Stdout io.Writer // results
	Stderr io.Writer // usage, warnings and notes that are not results
	// Bootstrap is the default of --bootstrap: comma-separated host:port
	// seed brokers. Empty means DefaultBootstrap.
	Bootstrap string
}

// subcommand is one verb of `fjord group` or `fjord topic`.
type subcommand struct {
	name string
	args string // the positional arguments, for usage
	help string
	// define declares the verb's own flags on fs and returns the function
	// that runs it once they are parsed, with the positional arguments.
	define func(fs *flag.FlagSet) func(ctx context.Context, c *cli, args []string) error
}

// cli is one invocation: the options every verb takes, and where output goes.
type cli struct {
	env       Env
	bootstrap string
	output    string
	timeout   time.Duration
}

// main runs the verb args[0] of the command tool ("group" or "topic").
func main(ctx context.Context, tool string, verbs []subcommand, args []string, env Env) error {
	if env.Bootstrap == "" {
		env.Bootstrap = DefaultBootstrap
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.Stderr, tool, verbs)
		if len(args) == 0 {
			return errors.New("no subcommand given")
		}
		return flag.ErrHelp
	}
	for _, v := range verbs {
		if v.name == args[0] {
			return v.run(ctx, tool, args[1:], env)
		}
	}
	usage(env.Stderr, tool, verbs)
	return fmt.Errorf("unknown subcommand %q", args[0])
}

func usage(w io.Writer, tool string, verbs []subcommand) {
	fmt.Fprintf(w, "usage: fjord %s <subcommand> [flags]\n\nsubcommands (`fjord %s <subcommand> -h` lists the flags):\n", tool, tool)
	for _, v := range verbs {
		fmt.Fprintf(w, "  %-36s %s\n", v.name+" "+v.args, v.help)
	}
}

func (v subcommand) run(ctx context.Context, tool string, args []string, env Env) error {
	fs := flag.NewFlagSet("fjord "+tool+" "+v.name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "usage: fjord %s %s %s [flags]\n\n%s\n\nflags:\n", tool, v.name, v.args, v.help)
		fs.PrintDefaults()
	}
	c := &cli{env: env}
	fs.StringVar(&c.bootstrap, "bootstrap", env.Bootstrap, "comma-separated `host:port` seed brokers (default from FJORD_BOOTSTRAP)")
	fs.StringVar(&c.bootstrap, "bootstrap-server", env.Bootstrap, "same as --bootstrap, Kafka's name for it")
	fs.StringVar(&c.output, "output", "table", "`format` of results: table (as Kafka's tools print) or json")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "give up on the cluster after this long (not applied to consume)")
	do := v.define(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if c.output != "table" && c.output != "json" {
		return fmt.Errorf("--output %q: want table or json", c.output)
	}
	return do(ctx, c, pos)
}

// parseInterspersed parses args with fs, allowing positional arguments
// before, between and after the flags (`describe g1 --members g2`); a lone
// "--" ends the flags. It returns the positional arguments in order.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		// fs.Parse consumed a "--" if that is where it stopped.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// admin returns an admin client of the bootstrap; close its Client when done.
func (c *cli) admin(opts ...kgo.Opt) (*kadm.Client, error) {
	cl, err := c.client(opts...)
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

// client returns a Kafka client of the bootstrap with opts.
func (c *cli) client(opts ...kgo.Opt) (*kgo.Client, error) {
	var seeds []string
	for _, s := range strings.Split(c.bootstrap, ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 {
		return nil, errors.New("no bootstrap: pass --bootstrap host:port or set FJORD_BOOTSTRAP")
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ClientID("fjord-cli")}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return cl, nil
}

// firstShard returns the one error behind a kadm request that failed on a
// single broker, which reads better than kadm's summary of shard errors.
func firstShard(err error) error {
	var se *kadm.ShardErrors
	if errors.As(err, &se) && len(se.Errs) == 1 {
		return se.Errs[0].Err
	}
	return err
}

// withTimeout bounds an admin call by --timeout.
func (c *cli) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.timeout)
}

func (c *cli) json() bool { return c.output == "json" }

// writeJSON writes v as indented JSON to stdout.
func (c *cli) writeJSON(v any) error {
	enc := json.NewEncoder(c.env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeJSONLine writes v as one line of JSON (JSON Lines, for streams).
func writeJSONLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// note writes a line that is not a result (a warning, a hint) to stderr.
func (c *cli) note(format string, args ...any) {
	fmt.Fprintf(c.env.Stderr, format+"\n", args...)
}

// table writes rows under a header in aligned columns, as Kafka's tools do.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)}
	t.row(anys(header)...)
	return t
}

// row adds one row; nil cells and negative *int64 print as "-".
func (t *table) row(cells ...any) {
	for i, v := range cells {
		if i > 0 {
			io.WriteString(t.tw, "\t")
		}
		io.WriteString(t.tw, cell(v))
	}
	io.WriteString(t.tw, "\n")
}

func (t *table) flush() error { return t.tw.Flush() }

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		if x == "" {
			return "-"
		}
		return x
	case *int64:
		if x == nil {
			return "-"
		}
		return fmt.Sprint(*x)
	}
	return fmt.Sprint(v)
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func ptr[T any](v T) *T { return &v }
