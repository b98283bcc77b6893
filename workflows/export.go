package workflows

import (
	"fmt"
	"path/filepath"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/repository"
)

// ExportRequest asks for a logical export of a backup, stored with the
// backup and, when Dir is set, written into Dir on the database's host.
type ExportRequest struct {
	Database string `json:"database"`
	Host     string `json:"host"`
	Backup   string `json:"backup"` // id, "latest", or an RFC 3339 time
	Kind     string `json:"kind"`   // sql or csv
	Dir      string `json:"dir"`    // absolute; "" stores the export only
}

// ExportResult lists what was exported and where the files were written.
type ExportResult struct {
	activities.ExportOutput
	Paths []string `json:"paths,omitempty"`
}

// ExportWorkflowID is the id of an export: one per backup and format.
func ExportWorkflowID(database, backup, kind string) string {
	return "export/" + database + "/" + backup + "/" + kind
}

// ExportWorkflow makes the export on any storage worker (once per backup and
// format; it is stored, encrypted, with the backup), then writes its files
// into the requested directory on the database's host.
func ExportWorkflow(ctx workflow.Context, req ExportRequest) (ExportResult, error) {
	bad := func(format string, args ...any) error {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), activities.ErrTypeBadInput, nil)
	}
	if err := repository.ValidateDatabaseName(req.Database); err != nil {
		return ExportResult{}, bad("%v", err)
	}
	if req.Kind != activities.ExportSQL && req.Kind != activities.ExportCSV {
		return ExportResult{}, bad("export format %q is not sql or csv", req.Kind)
	}
	if req.Dir != "" && (!filepath.IsAbs(req.Dir) || req.Host == "") {
		return ExportResult{}, bad("an export directory must be absolute and on a named host")
	}
	id, err := resolve(ctx, req.Database, req.Backup)
	if err != nil {
		return ExportResult{}, err
	}
	var res ExportResult
	if err := workflow.ExecuteActivity(longActivity(ctx, activities.StorageQueue), storageActs.ExportBackup,
		activities.ExportInput{Database: req.Database, BackupID: id, Kind: req.Kind}).Get(ctx, &res.ExportOutput); err != nil {
		return res, err
	}
	if req.Dir == "" {
		return res, nil
	}
	var fetched activities.FetchOutput
	if err := workflow.ExecuteActivity(longActivity(ctx, activities.HostQueue(req.Host)), sqliteActs.FetchExport,
		activities.FetchInput{Database: req.Database, BackupID: id, Kind: req.Kind, Dir: req.Dir}).Get(ctx, &fetched); err != nil {
		return res, err
	}
	res.Paths = fetched.Paths
	return res, nil
}
