package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/workflows"
)

// metricValue finds one sample in a Prometheus text exposition.
func metricValue(t *testing.T, body, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no sample %s in /metrics", series)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// After a pipeline run, the worker's /metrics shows Bulwark's series with
// the values of that run, next to the Temporal SDK's own.
func TestMetricsAfterAPipelineRun(t *testing.T) {
	c := newCluster(t, "")
	port := freePort(t)
	os.WriteFile(c.config, []byte(configFor(c.dir, fmt.Sprintf("metrics:\n  listen: 127.0.0.1:%d\n", port))), 0o600)
	newFinance(t, c.dir, 0)
	c.startWorker()

	run, err := c.client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: "pipeline/finance/metrics", TaskQueue: activities.WorkflowQueue,
	}, workflows.PipelineWorkflow, workflows.PipelineRequest{Database: "finance", Host: "e2e", Type: "full", Verify: true, RPO: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var res workflows.PipelineResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)

	if got := metricValue(t, body, `bulwark_backup_stored_bytes{database="finance",type="full"}`); got != float64(res.Backup.StoredBytes) {
		t.Errorf("stored bytes %v, the backup stored %d", got, res.Backup.StoredBytes)
	}
	if got := metricValue(t, body, `bulwark_backup_image_bytes{database="finance"}`); got != float64(res.Backup.ImageBytes) {
		t.Errorf("image bytes %v, the backup's image is %d", got, res.Backup.ImageBytes)
	}
	last := metricValue(t, body, `bulwark_last_success_timestamp_seconds{database="finance",destination="primary",operation="backup"}`)
	at := time.Unix(0, int64(last*1e9))
	if d := at.Sub(res.Backup.SnapshotAt); d < -time.Millisecond || d > time.Minute {
		t.Errorf("last backup success at %v, the snapshot was at %v", at, res.Backup.SnapshotAt)
	}
	if got := metricValue(t, body, `bulwark_check_ok{check="verify",database="finance"}`); got != 1 {
		t.Errorf("verify ok %v", got)
	}
	if age := metricValue(t, body, `bulwark_rpo_age_seconds{database="finance"}`); age < 0 || age > res.RPOAge.Seconds()+5 {
		t.Errorf("RPO age %v s, the run measured %v", age, res.RPOAge)
	}
	if !regexp.MustCompile(`(?m)^temporal_\w+`).MatchString(body) {
		t.Error("no Temporal SDK series")
	}
	replayHistory(t, c, "pipeline/finance/metrics", "", "pipeline")
}
