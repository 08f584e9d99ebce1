package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteText writes r as a human-readable table.
func (r Result) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "topic %s: %d partitions, %d B records, acks=%d, compression=%s, rate=%s, %d producer(s), %d consumer(s)\n",
		r.Topic, r.Partitions, r.RecordSize, r.Acks, r.Compression, rateString(r.TargetRate), r.Producers, r.Consumers)
	fmt.Fprintf(w, "measured %.1f s after %.1f s warmup\n\n", r.Window, r.Warmup)
	fmt.Fprintln(tw, "\trecords/s\tMiB/s\t")
	fmt.Fprintf(tw, "produce\t%.0f\t%.1f\t\n", r.ProduceRate, r.ProduceMiBps)
	fmt.Fprintf(tw, "consume\t%.0f\t%.1f\t\n", r.ConsumeRate, r.ConsumeMiBps)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "latency ms\tp50\tp99\tp99.9\tmax\tmean\tsamples\t")
	for _, row := range []struct {
		name string
		l    Latency
	}{{"produce", r.ProduceLatency}, {"end-to-end", r.EndToEnd}} {
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t\n",
			row.name, row.l.P50, row.l.P99, row.l.P999, row.l.Max, row.l.Mean, row.l.Count)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nerrors: produce %d, consume %d; total produced %d, consumed %d\n",
		r.ProduceErrors, r.ConsumeErrors, r.TotalProduced, r.TotalConsumed)
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error: %s\n", shortErr(r.FirstError))
	}
	return nil
}

// WriteJSON writes r as one JSON object and a newline.
func (r Result) WriteJSON(w io.Writer) error {
	return json.NewEncoder(w).Encode(r)
}

func rateString(rate float64) string {
	if rate == 0 {
		return "max"
	}
	return fmt.Sprintf("%.0f/s", rate)
}

// WriteMarkdown writes c as a markdown table, Fjord and kfake side by side,
// followed by the issue-2 targets and whether they are met.
func (c Comparison) WriteMarkdown(w io.Writer) error {
	if len(c.Brokers) == 0 {
		return nil
	}
	fmt.Fprintf(w, "Run %s, %d CPUs, load generator %s, load average %s before and %s after.\n\n",
		c.Env.Start.UTC().Format("2006-01-02 15:04 MST"), c.Env.CPUs, c.Env.GoVersion, c.Env.LoadBefore, c.Env.LoadAfter)
	names := []string{"Fjord (durable)", "kfake (in-memory)"}
	fmt.Fprint(w, "| |")
	for i := range c.Brokers {
		fmt.Fprintf(w, " %s |", names[min(i, len(names)-1)])
	}
	fmt.Fprint(w, "\n|---|")
	for range c.Brokers {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
	row := func(label string, cell func(b BrokerRuns) string) {
		fmt.Fprintf(w, "| %s |", label)
		for _, b := range c.Brokers {
			fmt.Fprintf(w, " %s |", cell(b))
		}
		fmt.Fprintln(w)
	}
	lat := func(l Latency) string { return fmt.Sprintf("%.2f / %.2f / %.2f", l.P50, l.P99, l.P999) }
	mib := func(b uint64) float64 { return float64(b) / (1 << 20) }
	section := func(title string, run func(BrokerRuns) BrokerRun) {
		row(title+" produce records/s", func(b BrokerRuns) string { return fmt.Sprintf("%.0f", run(b).Result.ProduceRate) })
		row("produce MiB/s", func(b BrokerRuns) string { return fmt.Sprintf("%.1f", run(b).Result.ProduceMiBps) })
		row("consume MiB/s", func(b BrokerRuns) string { return fmt.Sprintf("%.1f", run(b).Result.ConsumeMiBps) })
		row("produce latency p50 / p99 / p99.9 ms", func(b BrokerRuns) string { return lat(run(b).Result.ProduceLatency) })
		row("end-to-end latency p50 / p99 / p99.9 ms", func(b BrokerRuns) string { return lat(run(b).Result.EndToEnd) })
		row("broker RSS: peak VmRSS / VmHWM MiB", func(b BrokerRuns) string {
			return fmt.Sprintf("%.0f / %.0f", mib(run(b).PeakRSS), mib(run(b).HWM))
		})
		row("broker CPU, cores busy", func(b BrokerRuns) string { return fmt.Sprintf("%.2f", run(b).CPU) })
		row("errors (produce + consume)", func(b BrokerRuns) string {
			return fmt.Sprint(run(b).Result.ProduceErrors + run(b).Result.ConsumeErrors)
		})
	}
	section("**max rate:**", func(b BrokerRuns) BrokerRun { return b.Max })
	section(fmt.Sprintf("**%.0f records/s** (half Fjord's max):", c.HalfRate), func(b BrokerRuns) BrokerRun { return b.Half })

	if len(c.Brokers) < 2 {
		return nil
	}
	f, k := c.Brokers[0], c.Brokers[1]
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	fmt.Fprintln(w)
	fm, km, fh := f.Max.Result, k.Max.Result, f.Half.Result
	fmt.Fprintf(w, "- Produce MiB/s at max rate, Fjord ≥ kfake: %.1f vs %.1f, %s.\n", fm.ProduceMiBps, km.ProduceMiBps,
		verdict(fm.ProduceMiBps >= km.ProduceMiBps))
	fmt.Fprintf(w, "- Consume MiB/s at max rate, Fjord ≥ kfake: %.1f vs %.1f, %s.\n", fm.ConsumeMiBps, km.ConsumeMiBps,
		verdict(fm.ConsumeMiBps >= km.ConsumeMiBps))
	fmt.Fprintf(w, "- Fjord p99 produce latency at half its max rate < 10 ms: %.2f ms, %s.\n", fh.ProduceLatency.P99,
		verdict(fh.ProduceLatency.P99 < 10))
	_, err := fmt.Fprintln(w)
	return err
}

// WriteJSON writes c as one JSON object and a newline.
func (c Comparison) WriteJSON(w io.Writer) error {
	return json.NewEncoder(w).Encode(c)
}
