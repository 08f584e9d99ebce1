package api

import (
	"encoding/json"
	"time"
)

// This file holds the JSON shapes of the MSK API (botocore
// data/kafka/2018-11-14/service-2.json), named after their model shapes.
// Request shapes use pointers where the model lets a member be absent, so
// that absence can be told from a zero value; every model member appears, so
// a member Fjord does not act on can be refused rather than dropped.

// isoTime is a __timestampIso8601: RFC 3339 in UTC with milliseconds.
type isoTime time.Time

func (t isoTime) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Time(t).UTC().Format("2006-01-02T15:04:05.000Z"))
}

func ptrTime(t time.Time) *isoTime {
	if t.IsZero() {
		return nil
	}
	v := isoTime(t)
	return &v
}

type brokerNodeGroupInfo struct {
	BrokerAZDistribution *string           `json:"brokerAZDistribution,omitempty"`
	ClientSubnets        []string          `json:"clientSubnets,omitempty"`
	InstanceType         *string           `json:"instanceType,omitempty"`
	SecurityGroups       []string          `json:"securityGroups,omitempty"`
	StorageInfo          *storageInfo      `json:"storageInfo,omitempty"`
	ConnectivityInfo     *connectivityInfo `json:"connectivityInfo,omitempty"`
	ZoneIds              []string          `json:"zoneIds,omitempty"`
}

type storageInfo struct {
	EBSStorageInfo *ebsStorageInfo `json:"ebsStorageInfo,omitempty"`
}

type ebsStorageInfo struct {
	ProvisionedThroughput json.RawMessage `json:"provisionedThroughput,omitempty"`
	VolumeSize            *int            `json:"volumeSize,omitempty"`
}

type connectivityInfo struct {
	PublicAccess    *publicAccess   `json:"publicAccess,omitempty"`
	VPCConnectivity json.RawMessage `json:"vpcConnectivity,omitempty"`
	NetworkType     *string         `json:"networkType,omitempty"`
}

type publicAccess struct {
	Type *string `json:"type,omitempty"`
}

type enabled struct {
	Enabled *bool `json:"enabled,omitempty"`
}

type clientAuthentication struct {
	SASL *struct {
		SCRAM *enabled `json:"scram,omitempty"`
		IAM   *enabled `json:"iam,omitempty"`
	} `json:"sasl,omitempty"`
	TLS *struct {
		CertificateAuthorityArnList []string `json:"certificateAuthorityArnList,omitempty"`
		Enabled                     *bool    `json:"enabled,omitempty"`
	} `json:"tls,omitempty"`
	Unauthenticated *enabled `json:"unauthenticated,omitempty"`
}

type configurationInfo struct {
	ARN      *string `json:"arn,omitempty"`
	Revision *int64  `json:"revision,omitempty"`
}

type encryptionInfo struct {
	EncryptionAtRest    json.RawMessage `json:"encryptionAtRest,omitempty"`
	EncryptionInTransit *struct {
		ClientBroker *string `json:"clientBroker,omitempty"`
		InCluster    *bool   `json:"inCluster,omitempty"`
	} `json:"encryptionInTransit,omitempty"`
}

type exporter struct {
	EnabledInBroker *bool `json:"enabledInBroker,omitempty"`
}

type openMonitoringInfo struct {
	Prometheus *struct {
		JMXExporter  *exporter `json:"jmxExporter,omitempty"`
		NodeExporter *exporter `json:"nodeExporter,omitempty"`
	} `json:"prometheus,omitempty"`
}

// provisionedRequest is ProvisionedRequest, whose members CreateCluster also
// carries at its top level.
type provisionedRequest struct {
	BrokerNodeGroupInfo  *brokerNodeGroupInfo  `json:"brokerNodeGroupInfo,omitempty"`
	Rebalancing          json.RawMessage       `json:"rebalancing,omitempty"`
	ClientAuthentication *clientAuthentication `json:"clientAuthentication,omitempty"`
	ConfigurationInfo    *configurationInfo    `json:"configurationInfo,omitempty"`
	EncryptionInfo       *encryptionInfo       `json:"encryptionInfo,omitempty"`
	EnhancedMonitoring   *string               `json:"enhancedMonitoring,omitempty"`
	OpenMonitoring       *openMonitoringInfo   `json:"openMonitoring,omitempty"`
	KafkaVersion         *string               `json:"kafkaVersion,omitempty"`
	LoggingInfo          json.RawMessage       `json:"loggingInfo,omitempty"`
	NumberOfBrokerNodes  *int                  `json:"numberOfBrokerNodes,omitempty"`
	StorageMode          *string               `json:"storageMode,omitempty"`
}

type createClusterRequest struct {
	ClusterName *string           `json:"clusterName,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	provisionedRequest
}

type createClusterV2Request struct {
	ClusterName *string             `json:"clusterName,omitempty"`
	Tags        map[string]string   `json:"tags,omitempty"`
	Provisioned *provisionedRequest `json:"provisioned,omitempty"`
	Serverless  json.RawMessage     `json:"serverless,omitempty"`
}

type createClusterResponse struct {
	ClusterARN  string `json:"clusterArn"`
	ClusterName string `json:"clusterName"`
	State       string `json:"state"`
	ClusterType string `json:"clusterType,omitempty"`
}

// Output shapes.

type brokerSoftwareInfo struct {
	ConfigurationARN      string `json:"configurationArn,omitempty"`
	ConfigurationRevision int64  `json:"configurationRevision,omitempty"`
	KafkaVersion          string `json:"kafkaVersion,omitempty"`
}

type stateInfo struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

type outEnabled struct {
	Enabled bool `json:"enabled"`
}

type outClientAuthentication struct {
	SASL struct {
		SCRAM outEnabled `json:"scram"`
		IAM   outEnabled `json:"iam"`
	} `json:"sasl"`
	TLS             outEnabled `json:"tls"`
	Unauthenticated outEnabled `json:"unauthenticated"`
}

type outEncryptionInfo struct {
	EncryptionInTransit struct {
		ClientBroker string `json:"clientBroker"`
		InCluster    bool   `json:"inCluster"`
	} `json:"encryptionInTransit"`
}

type outExporter struct {
	EnabledInBroker bool `json:"enabledInBroker"`
}

type outOpenMonitoring struct {
	Prometheus struct {
		JMXExporter  outExporter `json:"jmxExporter"`
		NodeExporter outExporter `json:"nodeExporter"`
	} `json:"prometheus"`
}

type outBrokerNodeGroupInfo struct {
	BrokerAZDistribution string          `json:"brokerAZDistribution"`
	ClientSubnets        []string        `json:"clientSubnets"`
	InstanceType         string          `json:"instanceType"`
	StorageInfo          *outStorageInfo `json:"storageInfo,omitempty"`
	ZoneIds              []string        `json:"zoneIds,omitempty"`
}

type outStorageInfo struct {
	EBSStorageInfo struct {
		VolumeSize int `json:"volumeSize"`
	} `json:"ebsStorageInfo"`
}

// clusterInfo is ClusterInfo (DescribeCluster, ListClusters).
type clusterInfo struct {
	ActiveOperationARN        string                  `json:"activeOperationArn,omitempty"`
	BrokerNodeGroupInfo       outBrokerNodeGroupInfo  `json:"brokerNodeGroupInfo"`
	ClientAuthentication      outClientAuthentication `json:"clientAuthentication"`
	ClusterARN                string                  `json:"clusterArn"`
	ClusterName               string                  `json:"clusterName"`
	CreationTime              *isoTime                `json:"creationTime,omitempty"`
	CurrentBrokerSoftwareInfo brokerSoftwareInfo      `json:"currentBrokerSoftwareInfo"`
	CurrentVersion            string                  `json:"currentVersion"`
	EncryptionInfo            outEncryptionInfo       `json:"encryptionInfo"`
	EnhancedMonitoring        string                  `json:"enhancedMonitoring"`
	OpenMonitoring            outOpenMonitoring       `json:"openMonitoring"`
	NumberOfBrokerNodes       int                     `json:"numberOfBrokerNodes"`
	State                     string                  `json:"state"`
	StateInfo                 *stateInfo              `json:"stateInfo,omitempty"`
	Tags                      map[string]string       `json:"tags"`
	StorageMode               string                  `json:"storageMode"`
	CustomerActionStatus      string                  `json:"customerActionStatus"`
}

// provisioned is Provisioned, the V2 cluster's body.
type provisioned struct {
	BrokerNodeGroupInfo       outBrokerNodeGroupInfo  `json:"brokerNodeGroupInfo"`
	CurrentBrokerSoftwareInfo brokerSoftwareInfo      `json:"currentBrokerSoftwareInfo"`
	ClientAuthentication      outClientAuthentication `json:"clientAuthentication"`
	EncryptionInfo            outEncryptionInfo       `json:"encryptionInfo"`
	EnhancedMonitoring        string                  `json:"enhancedMonitoring"`
	OpenMonitoring            outOpenMonitoring       `json:"openMonitoring"`
	NumberOfBrokerNodes       int                     `json:"numberOfBrokerNodes"`
	StorageMode               string                  `json:"storageMode"`
	CustomerActionStatus      string                  `json:"customerActionStatus"`
}

// clusterV2 is Cluster (DescribeClusterV2, ListClustersV2).
type clusterV2 struct {
	ActiveOperationARN string            `json:"activeOperationArn,omitempty"`
	ClusterType        string            `json:"clusterType"`
	ClusterARN         string            `json:"clusterArn"`
	ClusterName        string            `json:"clusterName"`
	CreationTime       *isoTime          `json:"creationTime,omitempty"`
	CurrentVersion     string            `json:"currentVersion"`
	State              string            `json:"state"`
	StateInfo          *stateInfo        `json:"stateInfo,omitempty"`
	Tags               map[string]string `json:"tags"`
	Provisioned        provisioned       `json:"provisioned"`
}

type nodeInfo struct {
	AddedToClusterTime string          `json:"addedToClusterTime,omitempty"`
	BrokerNodeInfo     *brokerNodeInfo `json:"brokerNodeInfo,omitempty"`
	InstanceType       string          `json:"instanceType,omitempty"`
	NodeARN            string          `json:"nodeARN"`
	NodeType           string          `json:"nodeType"`
}

type brokerNodeInfo struct {
	BrokerID                  float64            `json:"brokerId"`
	ClientSubnet              string             `json:"clientSubnet,omitempty"`
	ClientVPCIPAddress        string             `json:"clientVpcIpAddress,omitempty"`
	CurrentBrokerSoftwareInfo brokerSoftwareInfo `json:"currentBrokerSoftwareInfo"`
	Endpoints                 []string           `json:"endpoints"`
}

type operationStep struct {
	StepInfo struct {
		StepStatus string `json:"stepStatus"`
	} `json:"stepInfo"`
	StepName string `json:"stepName"`
}

type errorInfo struct {
	ErrorCode   string `json:"errorCode,omitempty"`
	ErrorString string `json:"errorString,omitempty"`
}

type mutableClusterInfo struct {
	BrokerEBSVolumeInfo []brokerEBSVolumeInfo `json:"brokerEBSVolumeInfo,omitempty"`
	ConfigurationInfo   *outConfigurationInfo `json:"configurationInfo,omitempty"`
	NumberOfBrokerNodes int                   `json:"numberOfBrokerNodes,omitempty"`
	EnhancedMonitoring  string                `json:"enhancedMonitoring,omitempty"`
	KafkaVersion        string                `json:"kafkaVersion,omitempty"`
	InstanceType        string                `json:"instanceType,omitempty"`
	StorageMode         string                `json:"storageMode,omitempty"`
}

type brokerEBSVolumeInfo struct {
	KafkaBrokerNodeID string `json:"kafkaBrokerNodeId"`
	VolumeSizeGB      int    `json:"volumeSizeGB,omitempty"`
}

type outConfigurationInfo struct {
	ARN      string `json:"arn"`
	Revision int64  `json:"revision"`
}

// clusterOperationInfo is ClusterOperationInfo.
type clusterOperationInfo struct {
	ClusterARN        string              `json:"clusterArn"`
	CreationTime      *isoTime            `json:"creationTime,omitempty"`
	EndTime           *isoTime            `json:"endTime,omitempty"`
	ErrorInfo         *errorInfo          `json:"errorInfo,omitempty"`
	OperationARN      string              `json:"operationArn"`
	OperationState    string              `json:"operationState"`
	OperationSteps    []operationStep     `json:"operationSteps"`
	OperationType     string              `json:"operationType"`
	SourceClusterInfo *mutableClusterInfo `json:"sourceClusterInfo,omitempty"`
	TargetClusterInfo *mutableClusterInfo `json:"targetClusterInfo,omitempty"`
}

// clusterOperationV2Summary is ClusterOperationV2Summary.
type clusterOperationV2Summary struct {
	ClusterARN     string   `json:"clusterArn"`
	ClusterType    string   `json:"clusterType"`
	StartTime      *isoTime `json:"startTime,omitempty"`
	EndTime        *isoTime `json:"endTime,omitempty"`
	OperationARN   string   `json:"operationArn"`
	OperationState string   `json:"operationState"`
	OperationType  string   `json:"operationType"`
}

// clusterOperationV2 is ClusterOperationV2.
type clusterOperationV2 struct {
	clusterOperationV2Summary
	ErrorInfo   *errorInfo `json:"errorInfo,omitempty"`
	Provisioned struct {
		OperationSteps    []operationStep     `json:"operationSteps"`
		SourceClusterInfo *mutableClusterInfo `json:"sourceClusterInfo,omitempty"`
		TargetClusterInfo *mutableClusterInfo `json:"targetClusterInfo,omitempty"`
	} `json:"provisioned"`
}

type configurationRevision struct {
	CreationTime *isoTime `json:"creationTime"`
	Description  string   `json:"description,omitempty"`
	Revision     int64    `json:"revision"`
}

// configuration is Configuration (all members required in the model).
type configuration struct {
	ARN            string                `json:"arn"`
	CreationTime   *isoTime              `json:"creationTime"`
	Description    string                `json:"description"`
	KafkaVersions  []string              `json:"kafkaVersions"`
	LatestRevision configurationRevision `json:"latestRevision"`
	Name           string                `json:"name"`
	State          string                `json:"state"`
}

type createConfigurationRequest struct {
	Description      *string  `json:"description,omitempty"`
	KafkaVersions    []string `json:"kafkaVersions,omitempty"`
	Name             *string  `json:"name,omitempty"`
	ServerProperties []byte   `json:"serverProperties,omitempty"` // base64 on the wire
}

type updateConfigurationRequest struct {
	Description      *string `json:"description,omitempty"`
	ServerProperties []byte  `json:"serverProperties,omitempty"`
}

type tagResourceRequest struct {
	Tags map[string]string `json:"tags"`
}

type kafkaVersion struct {
	Version string `json:"version"`
	Status  string `json:"status"`
}

type compatibleKafkaVersion struct {
	SourceVersion  string   `json:"sourceVersion"`
	TargetVersions []string `json:"targetVersions"`
}
