"""Drive a Fjord control plane with boto3, as a user of Amazon MSK would.

usage: boto3_flow.py ENDPOINT up NAME
           create a configuration (num.partitions=3) and a 3-broker cluster
           over 3 subnets using it; wait for ACTIVE; list, describe, tag and
           untag; check MSK's errors for bad input. Prints one JSON object:
           {"clusterArn", "configurationArn", "bootstrap", "nodes"}.
       boto3_flow.py ENDPOINT down CLUSTER_ARN CONFIGURATION_ARN
           delete the cluster, wait until it is gone, delete the configuration.

Credentials and region come from the environment, as for any boto3 program.
"""

import json
import sys
import time

import boto3
from botocore.exceptions import ClientError


def client(endpoint):
    return boto3.client("kafka", endpoint_url=endpoint)


def expect_error(code, status, fn, **kwargs):
    try:
        fn(**kwargs)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        got_status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        if got != code or got_status != status:
            raise SystemExit(f"{fn.__name__}: got {got} {got_status}, want {code} {status}: {e}")
        return e.response["Error"]["Message"]
    raise SystemExit(f"{fn.__name__}({kwargs}) succeeded; want {code}")


def wait_state(k, arn, want, timeout=60):
    deadline = time.time() + timeout
    while True:
        state = k.describe_cluster(ClusterArn=arn)["ClusterInfo"]["State"]
        if state == want:
            return
        if state == "FAILED" or time.time() > deadline:
            raise SystemExit(f"cluster is {state}, want {want}")
        time.sleep(0.1)


def up(k, name):
    cfg = k.create_configuration(
        Name=name + "-config",
        Description="three partitions per new topic",
        KafkaVersions=["3.9.x"],
        ServerProperties=b"num.partitions=3\n",
    )
    assert cfg["LatestRevision"]["Revision"] == 1, cfg
    rev = k.update_configuration(Arn=cfg["Arn"], ServerProperties=b"num.partitions=3\nauto.create.topics.enable=true\n",
                                 Description="revision two")
    assert rev["LatestRevision"]["Revision"] == 2, rev
    revs = k.list_configuration_revisions(Arn=cfg["Arn"])["Revisions"]
    assert [r["Revision"] for r in revs] == [1, 2], revs
    r2 = k.describe_configuration_revision(Arn=cfg["Arn"], Revision=2)
    assert r2["ServerProperties"] == b"num.partitions=3\nauto.create.topics.enable=true\n", r2

    broker_info = {"ClientSubnets": ["subnet-a", "subnet-b", "subnet-c"], "InstanceType": "kafka.m5.large"}
    msg = expect_error("BadRequestException", 400, k.create_cluster, ClusterName=name, KafkaVersion="3.9.x",
                       NumberOfBrokerNodes=4, BrokerNodeGroupInfo=broker_info)
    assert "multiple" in msg, msg
    created = k.create_cluster(
        ClusterName=name,
        KafkaVersion="3.9.x",
        NumberOfBrokerNodes=3,
        BrokerNodeGroupInfo=broker_info,
        ConfigurationInfo={"Arn": cfg["Arn"], "Revision": 2},
        Tags={"team": "data"},
    )
    assert created["State"] == "CREATING", created
    arn = created["ClusterArn"]
    wait_state(k, arn, "ACTIVE")

    info = k.describe_cluster(ClusterArn=arn)["ClusterInfo"]
    assert info["NumberOfBrokerNodes"] == 3 and info["CurrentBrokerSoftwareInfo"]["ConfigurationRevision"] == 2, info
    v2 = k.describe_cluster_v2(ClusterArn=arn)["ClusterInfo"]
    assert v2["ClusterType"] == "PROVISIONED", v2
    names = [c["ClusterName"] for c in k.get_paginator("list_clusters").paginate().build_full_result()["ClusterInfoList"]]
    assert name in names, names
    assert len(k.list_clusters_v2(ClusterNameFilter=name)["ClusterInfoList"]) == 1
    nodes = k.list_nodes(ClusterArn=arn)["NodeInfoList"]
    assert sorted(n["BrokerNodeInfo"]["BrokerId"] for n in nodes) == [1.0, 2.0, 3.0], nodes
    assert sorted(n["BrokerNodeInfo"]["ClientSubnet"] for n in nodes) == ["subnet-a", "subnet-b", "subnet-c"], nodes
    ops = k.list_cluster_operations(ClusterArn=arn)["ClusterOperationInfoList"]
    assert ops[0]["OperationState"] == "UPDATE_COMPLETE", ops
    k.describe_cluster_operation(ClusterOperationArn=ops[0]["OperationArn"])

    k.tag_resource(ResourceArn=arn, Tags={"env": "test"})
    k.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert k.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"env": "test"}
    assert any(v["Version"] == "3.9.x" for v in k.list_kafka_versions()["KafkaVersions"])
    k.get_compatible_kafka_versions(ClusterArn=arn)

    ghost = arn.replace("/" + name + "/", "/ghost/")
    expect_error("NotFoundException", 404, k.describe_cluster, ClusterArn=ghost)
    msg = expect_error("BadRequestException", 400, k.delete_cluster, ClusterArn=arn, CurrentVersion="K0000000000000")
    assert "isn't current" in msg, msg
    msg = expect_error("BadRequestException", 400, k.delete_configuration, Arn=cfg["Arn"])
    assert "in use" in msg, msg

    bootstrap = k.get_bootstrap_brokers(ClusterArn=arn)["BootstrapBrokerString"]
    print(json.dumps({"clusterArn": arn, "configurationArn": cfg["Arn"], "bootstrap": bootstrap, "nodes": len(nodes)}))


def down(k, arn, config_arn):
    version = k.describe_cluster(ClusterArn=arn)["ClusterInfo"]["CurrentVersion"]
    assert k.delete_cluster(ClusterArn=arn, CurrentVersion=version)["State"] == "DELETING"
    deadline = time.time() + 60
    while True:
        try:
            k.describe_cluster(ClusterArn=arn)
        except ClientError as e:
            if e.response["Error"]["Code"] == "NotFoundException":
                break
            raise
        if time.time() > deadline:
            raise SystemExit("cluster was never deleted")
        time.sleep(0.1)
    k.delete_configuration(Arn=config_arn)
    print(json.dumps({"deleted": arn}))


def main():
    endpoint, verb = sys.argv[1], sys.argv[2]
    k = client(endpoint)
    if verb == "up":
        up(k, sys.argv[3])
    elif verb == "down":
        down(k, sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
