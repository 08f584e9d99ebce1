package store_test

import (
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fjord-io/fjord/internal/cluster"
	"github.com/fjord-io/fjord/internal/store"
)

func open(t *testing.T, path string) *store.SQLite {
	t.Helper()
	st, err := store.OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newCluster(name string) (cluster.Cluster, cluster.Operation) {
	a := cluster.ARN{Partition: "aws", Region: "us-east-1", Account: "000000000000", Resource: cluster.ResourceCluster, Name: name, ID: cluster.NewID()}
	op := a
	op.Resource, op.Sub = cluster.ResourceOperation, "op-"+name
	c := cluster.Cluster{ARN: a.String(), Name: name, State: cluster.Creating, CurrentVersion: cluster.NewVersion(), CreationTime: time.Now().UTC(),
		Spec: cluster.Spec{KafkaVersion: "3.9.x", NumberOfBrokerNodes: 1, ClientSubnets: []string{"a"}}, Tags: map[string]string{"k": "v"}, ActiveOperationARN: op.String()}
	return c, cluster.Operation{ARN: op.String(), ClusterARN: c.ARN, Type: cluster.OpCreate, State: cluster.OpPending, CreationTime: c.CreationTime}
}

func kindOf(err error) cluster.Kind {
	var ce *cluster.Error
	if errors.As(err, &ce) {
		return ce.Kind
	}
	return 0
}

func TestClustersAndPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	st := open(t, path)
	ctx := t.Context()
	var changed []string
	stop := st.Watch(func(arn string) { changed = append(changed, arn) })
	var arns []string
	for i := range 5 {
		c, op := newCluster("c" + strconv.Itoa(i))
		if err := st.CreateCluster(ctx, c, op); err != nil {
			t.Fatal(err)
		}
		arns = append(arns, c.ARN)
	}
	stop()
	if !cmp.Equal(changed, arns) {
		t.Errorf("watch saw %v", changed)
	}
	dup, op := newCluster("c1")
	if err := st.CreateCluster(ctx, dup, op); kindOf(err) != cluster.Conflict {
		t.Errorf("duplicate name: err = %v", err)
	}

	var got []string
	p := store.Page{MaxResults: 2}
	for {
		cs, next, err := st.Clusters(ctx, "", p)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			got = append(got, c.ARN)
		}
		if next == "" {
			break
		}
		p.NextToken = next
	}
	if diff := cmp.Diff(arns, got); diff != "" {
		t.Errorf("paged clusters (-want +got):\n%s", diff)
	}
	if _, _, err := st.Clusters(ctx, "", store.Page{NextToken: "bogus"}); kindOf(err) != cluster.Invalid {
		t.Errorf("bad token: err = %v", err)
	}

	// A failing update changes nothing.
	_, err := st.UpdateCluster(ctx, arns[0], func(c *cluster.Cluster) (*cluster.Operation, error) {
		c.State = cluster.Active
		return nil, cluster.Invalidf("x", "no")
	})
	if kindOf(err) != cluster.Invalid {
		t.Fatalf("UpdateCluster error = %v", err)
	}
	if c, _ := st.Cluster(ctx, arns[0]); c.State != cluster.Creating || c.Tags["k"] != "v" {
		t.Errorf("after failed update: %+v", c)
	}

	// Nodes hold ports; removing the cluster frees them.
	for id, port := range []int{100, 101} {
		if err := st.AddNode(ctx, cluster.Node{ClusterARN: arns[0], BrokerID: id + 1, Port: port, AddedTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.AddNode(ctx, cluster.Node{ClusterARN: arns[1], BrokerID: 1, Port: 100}); !errors.Is(err, store.ErrPortTaken) {
		t.Errorf("port reuse: err = %v", err)
	}
	if err := st.RemoveCluster(ctx, arns[0]); err != nil {
		t.Fatal(err)
	}
	if used, _ := st.UsedPorts(ctx); len(used) != 0 {
		t.Errorf("ports after remove = %v", used)
	}
	if _, err := st.Cluster(ctx, arns[0]); kindOf(err) != cluster.NotFound {
		t.Errorf("removed cluster: err = %v", err)
	}
	if ops, _, _ := st.Operations(ctx, arns[0], store.Page{}); len(ops) != 1 {
		t.Errorf("operations of a removed cluster = %v; they should outlive it", ops)
	}

	// Reopening applies no migration twice and keeps the data.
	st.Close()
	st2 := open(t, path)
	if cs, _, err := st2.Clusters(ctx, "c", store.Page{}); err != nil || len(cs) != 4 {
		t.Errorf("after reopen: %d clusters, %v", len(cs), err)
	}
}

func TestConfigurationsAndTags(t *testing.T) {
	st := open(t, filepath.Join(t.TempDir(), "db"))
	ctx := t.Context()
	arn := "arn:aws:kafka:us-east-1:000000000000:configuration/cfg/x-1"
	now := time.Now().UTC()
	if err := st.CreateConfiguration(ctx, cluster.ConfigurationRecord{ARN: arn, Name: "cfg", State: cluster.ConfigActive, CreationTime: now, KafkaVersions: []string{},
		LatestRevision: cluster.Revision{Revision: 1, CreationTime: now, ServerProperties: []byte("a=1")}}); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= cluster.MaxRevisions; i++ {
		r, err := st.AddRevision(ctx, arn, cluster.Revision{CreationTime: now, ServerProperties: []byte("a=" + strconv.Itoa(i))})
		if err != nil || r.Revision != int64(i) {
			t.Fatalf("AddRevision %d = %+v, %v", i, r, err)
		}
	}
	if _, err := st.AddRevision(ctx, arn, cluster.Revision{ServerProperties: []byte("x=1")}); kindOf(err) != cluster.Invalid {
		t.Errorf("revision beyond the limit: err = %v", err)
	}
	r, err := st.Revision(ctx, arn, 7)
	if err != nil || string(r.ServerProperties) != "a=7" {
		t.Errorf("Revision 7 = %q, %v", r.ServerProperties, err)
	}
	revs, next, err := st.Revisions(ctx, arn, store.Page{MaxResults: 10})
	if err != nil || len(revs) != 10 || next == "" {
		t.Errorf("Revisions page = %d, %q, %v", len(revs), next, err)
	}

	// A cluster using it keeps it from being deleted.
	c, op := newCluster("user")
	c.Spec.Configuration = &cluster.Configuration{ARN: arn, Revision: 1}
	if err := st.CreateCluster(ctx, c, op); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteConfiguration(ctx, arn); kindOf(err) != cluster.Invalid {
		t.Errorf("delete in use: err = %v", err)
	}

	tags := map[string]string{}
	for i := range store.MaxTags {
		tags["t"+strconv.Itoa(i)] = "v"
	}
	if err := st.TagResource(ctx, arn, tags); err != nil {
		t.Fatal(err)
	}
	if err := st.TagResource(ctx, arn, map[string]string{"one-too-many": "v"}); kindOf(err) != cluster.Invalid {
		t.Errorf("51st tag: err = %v", err)
	}
	if err := st.UntagResource(ctx, arn, []string{"t0", "missing"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Tags(ctx, arn); len(got) != store.MaxTags-1 {
		t.Errorf("%d tags, want %d", len(got), store.MaxTags-1)
	}
	if _, err := st.Tags(ctx, "arn:aws:kafka:us-east-1:000000000000:cluster/none/x-1"); kindOf(err) != cluster.NotFound {
		t.Errorf("tags of a missing resource: err = %v", err)
	}

	if err := st.RemoveCluster(ctx, c.ARN); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteConfiguration(ctx, arn); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Configuration(ctx, arn); kindOf(err) != cluster.NotFound {
		t.Errorf("deleted configuration: err = %v", err)
	}
}

func TestRootKey(t *testing.T) {
	st := open(t, filepath.Join(t.TempDir(), "db"))
	ctx := t.Context()
	if _, ok, err := st.RootKey(ctx); ok || err != nil {
		t.Fatalf("RootKey on an empty store = %v, %v", ok, err)
	}
	for _, id := range []string{"AKIAONE", "AKIATWO"} {
		if err := st.SetRootKey(ctx, store.AccessKey{ID: id, Secret: "s-" + id, Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	k, ok, err := st.RootKey(ctx)
	if !ok || err != nil || k.ID != "AKIATWO" || k.Secret != "s-AKIATWO" {
		t.Errorf("RootKey = %+v, %v, %v", k, ok, err)
	}
	if _, err := st.AccessKey(ctx, "AKIAONE"); !errors.Is(err, store.ErrNoAccessKey) {
		t.Errorf("replaced root key still valid: %v", err)
	}
}
