package cluster

import "time"

// Spec is the desired shape of a provisioned cluster: what the caller asked
// for, after defaults and validation. It is stored as JSON; field names are
// part of the store's format.
type Spec struct {
	KafkaVersion        string         `json:"kafkaVersion"`
	NumberOfBrokerNodes int            `json:"numberOfBrokerNodes"`
	InstanceType        string         `json:"instanceType"`
	ClientSubnets       []string       `json:"clientSubnets"`
	VolumeSizeGiB       int            `json:"volumeSizeGiB,omitempty"` // recorded, not enforced
	Configuration       *Configuration `json:"configuration,omitempty"`
	EnhancedMonitoring  string         `json:"enhancedMonitoring"`
	StorageMode         string         `json:"storageMode"`
	ClientBroker        string         `json:"clientBroker"` // encryption in transit: only PLAINTEXT for now
}

// Configuration names one revision of a configuration.
type Configuration struct {
	ARN      string `json:"arn"`
	Revision int64  `json:"revision"`
}

// StateInfo explains a FAILED state.
type StateInfo struct {
	Code    string
	Message string
}

// Cluster is the stored record of one cluster: its identity, Spec, and the
// observed lifecycle state the reconciler maintains.
type Cluster struct {
	ARN                string
	Name               string
	Spec               Spec
	State              State
	StateInfo          StateInfo
	CurrentVersion     string
	CreationTime       time.Time
	ActiveOperationARN string
	Tags               map[string]string
}

// Node is one broker of a cluster, placed in a zone with a port on this host.
type Node struct {
	ClusterARN   string
	BrokerID     int
	NodeARN      string
	ClientSubnet string
	Zone         string // broker.rack
	Port         int
	AddedTime    time.Time
}
