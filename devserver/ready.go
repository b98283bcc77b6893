package devserver

import (
	"context"
	"fmt"
	"net"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// workflowServiceName is the gRPC health service the frontend reports once it serves clients.
const workflowServiceName = "temporal.api.workflowservice.v1.WorkflowService"

// waitFrontend waits until the frontend at hostPort serves the workflow service and knows every
// namespace, then registers the search attributes a namespace lacks (namespaces created by this
// start already have them).
func waitFrontend(ctx context.Context, hostPort string, namespaces []string, attrs map[string]enumspb.IndexedValueType) error {
	conn, err := grpc.NewClient(hostPort, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dial frontend %s: %w", hostPort, err)
	}
	defer func() { _ = conn.Close() }()

	health := healthpb.NewHealthClient(conn)
	err = poll(ctx, func(ctx context.Context) error {
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: workflowServiceName})
		if err != nil {
			return err
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("status %v", resp.GetStatus())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("wait for frontend %s: %w", hostPort, err)
	}

	wf := workflowservice.NewWorkflowServiceClient(conn)
	for _, ns := range namespaces {
		err := poll(ctx, func(ctx context.Context) error {
			_, err := wf.DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns})
			return err
		})
		if err != nil {
			return fmt.Errorf("wait for namespace %s: %w", ns, err)
		}
	}

	if len(attrs) == 0 {
		return nil
	}
	op := operatorservice.NewOperatorServiceClient(conn)
	for _, ns := range namespaces {
		resp, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
		if err != nil {
			return fmt.Errorf("list search attributes of %s: %w", ns, err)
		}
		missing := map[string]enumspb.IndexedValueType{}
		for name, typ := range attrs {
			have, ok := resp.GetCustomAttributes()[name]
			switch {
			case !ok:
				missing[name] = typ
			case have != typ:
				return fmt.Errorf("search attribute %s of %s: registered as %v, want %v", name, ns, have, typ)
			}
		}
		if len(missing) == 0 {
			continue
		}
		_, err = op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: ns, SearchAttributes: missing})
		if err != nil {
			return fmt.Errorf("add search attributes to %s: %w", ns, err)
		}
	}
	return nil
}

// waitListening waits until a TCP connection to addr succeeds.
func waitListening(ctx context.Context, addr string) error {
	var d net.Dialer
	return poll(ctx, func(ctx context.Context) error {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// poll calls try until it succeeds or ctx ends, and then returns try's last error.
func poll(ctx context.Context, try func(context.Context) error) error {
	const interval = 50 * time.Millisecond
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := try(attemptCtx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}
