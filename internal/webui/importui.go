package webui

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/report"
)

// maxImportBytes bounds an uploaded import file: [report.MaxRows] rows of a
// few hundred bytes each.
const maxImportBytes = 64 << 20

// importData is the Import page's content.
type importData struct {
	Error    string
	Problems []device.RowProblem // every problem of a bad file, as data
	More     bool                // there were more than those
	Counts   *device.ImportCounts
	Columns  []string
}

func (u *ui) importForm(w http.ResponseWriter, r *http.Request, p account.Principal) {
	u.render(w, r, p, http.StatusOK, "import.html", "Import Phones", "import", importData{Columns: report.ImportColumns()})
}

// importSubmit imports the uploaded CSV: all rows or, when any is bad,
// none, with every problem named by line, column and reason.
func (u *ui) importSubmit(w http.ResponseWriter, r *http.Request, p account.Principal) {
	d := importData{Columns: report.ImportColumns()}
	status := http.StatusOK
	counts, err := u.importUpload(r, p)
	if err != nil {
		pr := u.problem("import", err)
		d.Error, status = pr.Detail, pr.Status
		if d.Problems, d.More = device.RowProblemsOf(err); len(d.Problems) > 0 {
			d.Error = fmt.Sprintf("The file was not imported: %d problem", len(d.Problems))
			if len(d.Problems) > 1 {
				d.Error += "s"
			}
			if d.More {
				d.Error += " named here, and more"
			}
			d.Error += ". Nothing was changed; correct the rows and import the file again."
		}
	} else {
		d.Counts = &counts
	}
	u.render(w, r, p, status, "import.html", "Import Phones", "import", d)
}

func (u *ui) importUpload(r *http.Request, p account.Principal) (device.ImportCounts, error) {
	file, _, err := r.FormFile("file")
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return device.ImportCounts{}, fault.InvalidField("file", "the file is larger than %d MiB", maxImportBytes>>20)
		case errors.Is(err, http.ErrMissingFile):
			return device.ImportCounts{}, fault.InvalidField("file", "choose a CSV file to import")
		}
		return device.ImportCounts{}, fault.InvalidField("file", "the upload could not be read: %v", err)
	}
	defer file.Close()
	rows, err := report.ParseImport(bufio.NewReader(file))
	if err != nil {
		return device.ImportCounts{}, err
	}
	return u.o.Devices.Import(r.Context(), p.Actor(), report.ImportRows(rows))
}

// reportCSV downloads the CAPF report of the phones the carried search
// matches (every phone without one).
func (u *ui) reportCSV(w http.ResponseWriter, r *http.Request, p account.Principal) {
	s := parseSearch(r.URL.Query())
	now := u.o.Devices.Now()
	err := s.check()
	var q device.Query
	if err == nil {
		q, err = s.criteria(true).Query(now)
	}
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	rep, err := u.compose.Report(r.Context(), u.audience(p), q)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="capf-report.csv"`)
	bw := bufio.NewWriter(w)
	if err := report.WriteReport(bw, rep.Devices, rep.At); err != nil {
		u.log.Error("webui: report", "err", err)
		return
	}
	if err := bw.Flush(); err != nil {
		u.log.Debug("webui: report", "err", err)
	}
}
