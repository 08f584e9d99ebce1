package broker_test

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	leaderRate   = "leader.replication.throttled.rate"
	followerRate = "follower.replication.throttled.rate"
)

// TestBrokerConfigsRoundTrip alters and describes dynamic broker configs
// on the BROKER resource, of one broker and of the cluster default, with
// IncrementalAlterConfigs and AlterConfigs, and checks every broker sees
// them with Kafka's sources and synonyms.
func TestBrokerConfigsRoundTrip(t *testing.T) {
	c := newTestCluster(t, 2, map[string]string{followerRate: "123456"})
	cl := c.client()
	adm := kadm.NewClient(cl)
	ctx := t.Context()
	unlimited := strconv.FormatInt(math.MaxInt64, 10)

	// describe returns the configs of broker (-1: the cluster default) as
	// "value source [synonym source ...]".
	describe := func(broker int32) map[string]string {
		t.Helper()
		var brokers []int32
		name := ""
		if broker >= 0 {
			brokers, name = []int32{broker}, strconv.Itoa(int(broker))
		}
		rcs, err := adm.DescribeBrokerConfigs(ctx, brokers...)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On(name, nil)
		if err == nil {
			err = rc.Err
		}
		if err != nil {
			t.Fatalf("describe broker %q: %v", name, err)
		}
		out := map[string]string{}
		for _, c := range rc.Configs {
			s := fmt.Sprintf("%s %s [", c.MaybeValue(), c.Source)
			for i, syn := range c.Synonyms {
				if i > 0 {
					s += " "
				}
				s += fmt.Sprintf("%s %s", *syn.Value, syn.Source)
			}
			out[c.Key] = s + "]"
		}
		return out
	}
	expect := func(broker int32, want map[string]string) {
		t.Helper()
		var got map[string]string
		ok := func() bool {
			got = describe(broker)
			for k, v := range want {
				if got[k] != v {
					return false
				}
			}
			return true
		}
		deadline := time.Now().Add(10 * time.Second) // the other broker learns by its watch
		for !ok() {
			if time.Now().After(deadline) {
				for k, v := range want {
					if got[k] != v {
						t.Errorf("broker %d: %s = %q, want %q", broker, k, got[k], v)
					}
				}
				t.FailNow()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	check := func(what string, resps kadm.AlterConfigsResponses, err error, want error) {
		t.Helper()
		if err == nil {
			for _, r := range resps {
				if r.Err != nil {
					err = fmt.Errorf("%w: %s", r.Err, r.ErrMessage)
				}
			}
		}
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", what, err, want)
		}
	}
	set := func(name, value string) kadm.AlterConfig {
		return kadm.AlterConfig{Op: kadm.SetConfig, Name: name, Value: &value}
	}

	expect(0, map[string]string{
		leaderRate:   unlimited + " DEFAULT_CONFIG [" + unlimited + " DEFAULT_CONFIG]",
		followerRate: "123456 STATIC_BROKER_CONFIG [123456 STATIC_BROKER_CONFIG " + unlimited + " DEFAULT_CONFIG]",
	})
	if got := describe(-1); len(got) != 0 {
		t.Errorf("cluster default before any change: %v", got)
	}

	// IncrementalAlterConfigs on the cluster default reaches every broker.
	resps, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{set(leaderRate, "1000")})
	check("set the default", resps, err, nil)
	expect(-1, map[string]string{leaderRate: "1000 DYNAMIC_DEFAULT_BROKER_CONFIG [1000 DYNAMIC_DEFAULT_BROKER_CONFIG " + unlimited + " DEFAULT_CONFIG]"})
	for _, b := range []int32{0, 1} {
		expect(b, map[string]string{leaderRate: "1000 DYNAMIC_DEFAULT_BROKER_CONFIG [1000 DYNAMIC_DEFAULT_BROKER_CONFIG " + unlimited + " DEFAULT_CONFIG]"})
	}

	// AlterConfigs on one broker sets its whole set, over the default.
	resps, err = adm.AlterBrokerConfigsState(ctx, []kadm.AlterConfig{set(leaderRate, "2000"), set(followerRate, "3000")}, 1)
	check("set broker 1", resps, err, nil)
	expect(1, map[string]string{
		leaderRate:   "2000 DYNAMIC_BROKER_CONFIG [2000 DYNAMIC_BROKER_CONFIG 1000 DYNAMIC_DEFAULT_BROKER_CONFIG " + unlimited + " DEFAULT_CONFIG]",
		followerRate: "3000 DYNAMIC_BROKER_CONFIG [3000 DYNAMIC_BROKER_CONFIG 123456 STATIC_BROKER_CONFIG " + unlimited + " DEFAULT_CONFIG]",
	})
	expect(0, map[string]string{leaderRate: "1000 DYNAMIC_DEFAULT_BROKER_CONFIG [1000 DYNAMIC_DEFAULT_BROKER_CONFIG " + unlimited + " DEFAULT_CONFIG]"})
	resps, err = adm.AlterBrokerConfigsState(ctx, []kadm.AlterConfig{set(followerRate, "4000")}, 1)
	check("replace broker 1's set", resps, err, nil)
	expect(1, map[string]string{
		leaderRate:   "1000 DYNAMIC_DEFAULT_BROKER_CONFIG [1000 DYNAMIC_DEFAULT_BROKER_CONFIG " + unlimited + " DEFAULT_CONFIG]",
		followerRate: "4000 DYNAMIC_BROKER_CONFIG [4000 DYNAMIC_BROKER_CONFIG 123456 STATIC_BROKER_CONFIG " + unlimited + " DEFAULT_CONFIG]",
	})
	resps, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: followerRate}}, 1)
	check("delete broker 1's follower rate", resps, err, nil)
	expect(1, map[string]string{followerRate: "123456 STATIC_BROKER_CONFIG [123456 STATIC_BROKER_CONFIG " + unlimited + " DEFAULT_CONFIG]"})

	// Refused: read-only configs, bad values, list operations; a dry run
	// changes nothing.
	resps, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{set("log.retention.hours", "1")}, 0)
	check("set a read-only config", resps, err, kerr.InvalidRequest)
	resps, err = adm.AlterBrokerConfigsState(ctx, []kadm.AlterConfig{set("log.dirs", "/tmp")})
	check("AlterConfigs on a read-only config", resps, err, kerr.InvalidRequest)
	for _, v := range []string{"-5", "fast", ""} {
		resps, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{set(leaderRate, v)}, 0)
		check("rate "+strconv.Quote(v), resps, err, kerr.InvalidRequest)
	}
	resps, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: leaderRate, Value: kadm.StringPtr("1")}})
	check("append to a rate", resps, err, kerr.InvalidConfig)
	resps, err = adm.ValidateAlterBrokerConfigs(ctx, []kadm.AlterConfig{set(leaderRate, "9")})
	check("validate only", resps, err, nil)
	expect(-1, map[string]string{leaderRate: "1000 DYNAMIC_DEFAULT_BROKER_CONFIG [1000 DYNAMIC_DEFAULT_BROKER_CONFIG " + unlimited + " DEFAULT_CONFIG]"})

	// kafka-reassign-partitions --verify clears every throttle of each
	// broker, in one request per broker.
	var clear []kadm.AlterConfig
	for _, name := range []string{leaderRate, followerRate, "replica.alter.log.dirs.io.max.bytes.per.second"} {
		clear = append(clear, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: name})
	}
	resps, err = adm.AlterBrokerConfigs(ctx, clear, 0, 1)
	check("clear the throttles", resps, err, nil)

	// Only the broker itself takes or describes its own configs, as in
	// Kafka; dynamic configs are not read-only, the others are.
	alter := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, "1"
	alter.Resources = append(alter.Resources, rr)
	kr, err := cl.Broker(0).Request(ctx, alter)
	if err != nil {
		t.Fatal(err)
	}
	if code := kr.(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode; code != kerr.InvalidRequest.Code {
		t.Errorf("broker 0 altering broker 1: code %d, want INVALID_REQUEST", code)
	}
	desc := kmsg.NewPtrDescribeConfigsRequest()
	for _, name := range []string{"0", "1"} {
		dr := kmsg.NewDescribeConfigsRequestResource()
		dr.ResourceType, dr.ResourceName = kmsg.ConfigResourceTypeBroker, name
		desc.Resources = append(desc.Resources, dr)
	}
	kr, err = cl.Broker(0).Request(ctx, desc)
	if err != nil {
		t.Fatal(err)
	}
	dresp := kr.(*kmsg.DescribeConfigsResponse)
	if code := dresp.Resources[1].ErrorCode; code != kerr.InvalidRequest.Code {
		t.Errorf("broker 0 describing broker 1: code %d, want INVALID_REQUEST", code)
	}
	readOnly := map[string]bool{}
	for _, c := range dresp.Resources[0].Configs {
		readOnly[c.Name] = c.ReadOnly
	}
	if ro, ok := readOnly[leaderRate]; !ok || ro {
		t.Errorf("%s listed %v, read-only %v; want listed, not read-only", leaderRate, ok, ro)
	}
	if !readOnly["log.dirs"] {
		t.Error("log.dirs is not read-only")
	}
}

// A standalone broker keeps its dynamic broker configs in its metadata
// file, across restarts.
func TestBrokerConfigsStandalone(t *testing.T) {
	dir := t.TempDir()
	t.Run("set", func(t *testing.T) {
		adm := kadm.NewClient(newClient(t, startBroker(t, dir, nil)))
		v := "5000"
		resps, err := adm.AlterBrokerConfigs(t.Context(), []kadm.AlterConfig{{Name: leaderRate, Value: &v}})
		if err == nil {
			var r kadm.AlterConfigsResponse
			if r, err = resps.On("", nil); err == nil {
				err = r.Err
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("restarted", func(t *testing.T) {
		adm := kadm.NewClient(newClient(t, startBroker(t, dir, nil)))
		rcs, err := adm.DescribeBrokerConfigs(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := rcs.On("0", nil)
		i := slices.IndexFunc(rc.Configs, func(c kadm.Config) bool { return c.Key == leaderRate })
		if i < 0 {
			t.Fatalf("%s not described", leaderRate)
		}
		if c := rc.Configs[i]; c.MaybeValue() != "5000" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
			t.Errorf("%s = %s from %s, want 5000 from the cluster default", leaderRate, c.MaybeValue(), c.Source)
		}
	})
}
