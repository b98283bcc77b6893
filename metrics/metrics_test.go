package metrics

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestSeriesAreServed(t *testing.T) {
	m := New()
	addr, stop, err := m.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	at := time.Unix(1790000000, 0)
	m.Succeeded("finance", "backup", "local", at, 1500*time.Millisecond)
	m.Backup("finance", "full", 12345, 40960)
	m.Check("finance", "verify", false)
	m.RPOAge("finance", 90*time.Minute)
	m.Failed("finance", "replicate")
	sdk := m.SDKHandler().WithTags(map[string]string{"namespace": "default", "task-queue": "bulwark-storage"})
	sdk.Counter("temporal_request").Inc(3)
	sdk.WithTags(map[string]string{"operation": "Poll"}).Counter("temporal_request").Inc(1) // an extra tag is dropped
	sdk.Timer("temporal_activity_execution_latency").Record(20 * time.Millisecond)
	sdk.Gauge("temporal_num_pollers").Update(2)
	var nilMetrics *Bulwark
	nilMetrics.Succeeded("x", "backup", "", at, time.Second) // must not panic

	out := scrape(t, addr)
	for _, want := range []string{
		`bulwark_last_success_timestamp_seconds{database="finance",destination="local",operation="backup"} 1.79e+09`,
		`bulwark_last_duration_seconds{database="finance",operation="backup"} 1.5`,
		`bulwark_backup_stored_bytes{database="finance",type="full"} 12345`,
		`bulwark_backup_image_bytes{database="finance"} 40960`,
		`bulwark_check_ok{check="verify",database="finance"} 0`,
		`bulwark_rpo_age_seconds{database="finance"} 5400`,
		`bulwark_operation_failures_total{database="finance",operation="replicate"} 1`,
		`temporal_request{namespace="default",task_queue="bulwark-storage"} 4`,
		`temporal_activity_execution_latency_seconds_count{namespace="default",task_queue="bulwark-storage"} 1`,
		`temporal_num_pollers{namespace="default",task_queue="bulwark-storage"} 2`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
}
