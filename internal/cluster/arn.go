package cluster

import (
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// Resource types that appear in Fjord ARNs, as MSK spells them.
const (
	ResourceCluster       = "cluster"
	ResourceConfiguration = "configuration"
	ResourceOperation     = "cluster-operation"
	ResourceBroker        = "broker"
)

// ARN is a parsed MSK resource name:
//
//	arn:{partition}:kafka:{region}:{account}:{resource}/{name}/{id}[/{sub}]
//
// Clusters and configurations have an ID of the form "{uuid}-{n}"; cluster
// operations and broker nodes carry their cluster's ID and their own UUID as Sub.
type ARN struct {
	Partition string
	Region    string
	Account   string
	Resource  string
	Name      string
	ID        string
	Sub       string
}

// String formats a in MSK's layout.
func (a ARN) String() string {
	s := fmt.Sprintf("arn:%s:kafka:%s:%s:%s/%s/%s", a.Partition, a.Region, a.Account, a.Resource, a.Name, a.ID)
	if a.Sub != "" {
		s += "/" + a.Sub
	}
	return s
}

// UUID returns the UUID part of a's ID: the ID without its "-{n}" suffix.
func (a ARN) UUID() string {
	if i := strings.LastIndexByte(a.ID, '-'); i > 0 && len(a.ID)-i <= 3 {
		return a.ID[:i]
	}
	return a.ID
}

// ParseARN parses s as an MSK ARN of the given resource type. It returns an
// Invalid error naming field when s is not one.
func ParseARN(field, resource, s string) (ARN, error) {
	bad := Invalidf(field, "%s %q is not a valid %s ARN: expected arn:aws:kafka:REGION:ACCOUNT:%s/NAME/ID", field, s, resource, resource)
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "kafka" || parts[1] == "" {
		return ARN{}, bad
	}
	path := strings.Split(parts[5], "/")
	want := 3
	if resource == ResourceOperation || resource == ResourceBroker {
		want = 4
	}
	if len(path) != want || path[0] != resource {
		return ARN{}, bad
	}
	for _, p := range path[1:] {
		if p == "" {
			return ARN{}, bad
		}
	}
	a := ARN{Partition: parts[1], Region: parts[3], Account: parts[4], Resource: path[0], Name: path[1], ID: path[2]}
	if want == 4 {
		a.Sub = path[3]
	}
	return a, nil
}

// NewID returns a fresh resource ID in MSK's "{uuid}-{n}" form.
func NewID() string {
	u := uuid.New()
	return fmt.Sprintf("%s-%d", u, int(u[0])%25+1)
}

// NewVersion returns a fresh opaque cluster version string, like MSK's
// "K3AEGXETSR30VB": a K followed by 13 upper-case letters and digits.
func NewVersion() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 13)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "K" + string(b)
}
