package mskcli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kafka"
	"github.com/aws/aws-sdk-go-v2/service/kafka/types"
)

// PollInterval is how often --wait asks for the cluster's state.
const PollInterval = 500 * time.Millisecond

// waitActive polls a cluster until it is ACTIVE, writing a line to stderr
// whenever its state or its operation's progress changes. A FAILED cluster
// is an error carrying the cluster's stateInfo.
func (c *cli) waitActive(ctx context.Context, arn string) error {
	start := time.Now()
	last := ""
	for {
		d, err := c.client.DescribeCluster(ctx, &kafka.DescribeClusterInput{ClusterArn: aws.String(arn)})
		if err != nil {
			return err
		}
		info := d.ClusterInfo
		line := string(info.State) + c.progress(ctx, info.ActiveOperationArn)
		if line != last {
			fmt.Fprintf(c.errw, "%6.1fs  %s\n", time.Since(start).Seconds(), line)
			last = line
		}
		switch info.State {
		case types.ClusterStateActive:
			fmt.Fprintf(c.errw, "cluster %s is ACTIVE after %.1fs\n", aws.ToString(info.ClusterName), time.Since(start).Seconds())
			return nil
		case types.ClusterStateFailed:
			msg := ""
			if info.StateInfo != nil {
				msg = aws.ToString(info.StateInfo.Code) + ": " + aws.ToString(info.StateInfo.Message)
			}
			return fmt.Errorf("cluster %s FAILED: %s", aws.ToString(info.ClusterName), msg)
		case types.ClusterStateDeleting:
			return fmt.Errorf("cluster %s is being deleted", aws.ToString(info.ClusterName))
		}
		if err := sleep(ctx, PollInterval); err != nil {
			return err
		}
	}
}

// waitDeleted polls a cluster until it no longer exists.
func (c *cli) waitDeleted(ctx context.Context, arn string) error {
	start := time.Now()
	last := ""
	for {
		d, err := c.client.DescribeCluster(ctx, &kafka.DescribeClusterInput{ClusterArn: aws.String(arn)})
		var nf *types.NotFoundException
		if errors.As(err, &nf) {
			fmt.Fprintf(c.errw, "cluster deleted after %.1fs\n", time.Since(start).Seconds())
			return nil
		}
		if err != nil {
			return err
		}
		line := string(d.ClusterInfo.State) + c.progress(ctx, d.ClusterInfo.ActiveOperationArn)
		if line != last {
			fmt.Fprintf(c.errw, "%6.1fs  %s\n", time.Since(start).Seconds(), line)
			last = line
		}
		if err := sleep(ctx, PollInterval); err != nil {
			return err
		}
	}
}

// progress describes the steps of the active operation, if any.
func (c *cli) progress(ctx context.Context, opARN *string) string {
	if opARN == nil {
		return ""
	}
	op, err := c.client.DescribeClusterOperation(ctx, &kafka.DescribeClusterOperationInput{ClusterOperationArn: opARN})
	if err != nil || op.ClusterOperationInfo == nil {
		return ""
	}
	var steps []string
	for _, s := range op.ClusterOperationInfo.OperationSteps {
		status := ""
		if s.StepInfo != nil {
			status = aws.ToString(s.StepInfo.StepStatus)
		}
		steps = append(steps, aws.ToString(s.StepName)+" "+status)
	}
	if len(steps) == 0 {
		return "  " + aws.ToString(op.ClusterOperationInfo.OperationType) + " " + aws.ToString(op.ClusterOperationInfo.OperationState)
	}
	return "  " + aws.ToString(op.ClusterOperationInfo.OperationType) + ": " + strings.Join(steps, ", ")
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
