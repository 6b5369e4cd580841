package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/report"
	"github.com/capf-server/capf/internal/view"
	"github.com/capf-server/capf/internal/webauth"
)

// maxImportBytes bounds an import file: report.MaxRows rows of a generous
// 300 bytes each.
const maxImportBytes = 32 << 20

// maxBodyBytes bounds every other request body: huma's default.
const maxBodyBytes = 1 << 20

// BodyLimit is the most a request body to the API may hold, for
// webauth.LimitBodies: the import file's limit on the import route, the
// routes' own (huma's default) elsewhere.
func BodyLimit(r *http.Request) int64 {
	if r.URL.Path == Prefix+"/import" {
		return maxImportBytes
	}
	return maxBodyBytes
}

type importInput struct {
	RawBody []byte `contentType:"text/csv" doc:"the CAPF import format (capf device import's); the CAPF report is accepted back"`
}

type importOutput struct{ Body view.ImportCounts }

type reportInput struct {
	Filters
}

// CAPFCertificate describes the CAPF certificate (ca.Describe), named for
// what it is in the OpenAPI document.
type CAPFCertificate ca.Description

type certificateOutput struct{ Body CAPFCertificate }

type certificateFileInput struct {
	Format string `query:"format" enum:"pem,der,hash" default:"pem" doc:"pem, der, or hash: the PEM named <subject hash>.0 for OpenSSL's -CApath"`
	ID     string `query:"id" maxLength:"128" doc:"the CA of the CA set to download (its id or serial, as GET /ca-set lists them); the active one by default"`
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func (s *server) registerFiles() {
	add(s, writeAccess, huma.Operation{
		OperationID: "import-devices", Method: http.MethodPost, Path: "/import", Tags: []string{"devices"},
		Summary:      "Add or update phones from a CSV file, all or nothing",
		Description:  "A bad file is refused whole with a 422 problem naming every bad row (up to 100): one errors[] entry per problem, located at \"line N\", its message naming the column and the reason.",
		MaxBodyBytes: maxImportBytes, BodyReadTimeout: 2 * time.Minute, Errors: []int{http.StatusRequestEntityTooLarge},
	}, s.importDevices)
	add(s, readAccess, huma.Operation{
		OperationID: "report", Method: http.MethodGet, Path: "/report", Tags: []string{"devices"},
		Summary:     "The CAPF report (CSV) of the phones the criteria match, all of them by default",
		Description: "POST /import accepts it back.",
		Responses:   fileResponses("the CAPF report", "text/csv"),
	}, s.report)
	add(s, readAccess, huma.Operation{
		OperationID: "capf-certificate", Method: http.MethodGet, Path: "/capf-certificate", Tags: []string{"security"},
		Summary: "The active CAPF certificate (GET /ca-set lists every one)",
		Errors:  []int{http.StatusServiceUnavailable},
	}, s.certificate)
	add(s, readAccess, huma.Operation{
		OperationID: "capf-certificate-file", Method: http.MethodGet, Path: "/capf-certificate/file", Tags: []string{"security"},
		Summary:   "Download the CAPF certificate: PEM, DER, or PEM named <subject hash>.0",
		Responses: fileResponses("the CAPF certificate", mediaPEM, mediaDER),
		Errors:    []int{http.StatusServiceUnavailable},
	}, s.certificateFile)
}

func (s *server) importDevices(ctx context.Context, in *importInput) (*importOutput, error) {
	actor, err := writer(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	rows, err := report.ParseImport(bytes.NewReader(in.RawBody))
	if err != nil {
		return nil, s.importFail(ctx, err)
	}
	counts, err := s.o.Devices.Import(ctx, actor, report.ImportRows(rows))
	if err != nil {
		return nil, s.importFail(ctx, err)
	}
	return &importOutput{Body: view.ImportCountsOf(counts)}, nil
}

func (s *server) report(ctx context.Context, in *reportInput) (*fileOutput, error) {
	now := s.o.Devices.Now()
	q, err := criteriaQuery(in.criteria(), now)
	if err != nil {
		return nil, s.fail(ctx, err, "query")
	}
	rep, err := s.compose.Report(ctx, s.reader(ctx), q)
	if err != nil {
		return nil, s.fail(ctx, err, "query")
	}
	var b bytes.Buffer
	if err := report.WriteReport(&b, rep.Devices, rep.At); err != nil {
		return nil, s.fail(ctx, err, "")
	}
	return &fileOutput{ContentType: mediaCSV, ContentDisposition: attachment("capf-report.csv"), Body: b.Bytes()}, nil
}

func (s *server) certificate(ctx context.Context, _ *struct{}) (*certificateOutput, error) {
	c, err := s.capfCertificate(ctx, "")
	if err != nil {
		return nil, err
	}
	d, err := ca.Describe(c)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	return &certificateOutput{Body: CAPFCertificate(d)}, nil
}

func (s *server) certificateFile(ctx context.Context, in *certificateFileInput) (*fileOutput, error) {
	c, err := s.capfCertificate(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	out := &fileOutput{ContentType: mediaPEM, ContentDisposition: attachment("capf.pem"), Body: pemBytes}
	name := "capf.pem"
	switch in.Format {
	case "der":
		name = "capf.der"
		out = &fileOutput{ContentType: mediaDER, ContentDisposition: attachment(name), Body: c.Raw}
	case "hash":
		if name, err = ca.HashFileName(c); err != nil {
			return nil, s.fail(ctx, err, "")
		}
		out = &fileOutput{ContentType: mediaPEM, ContentDisposition: attachment(name), Body: pemBytes}
	}
	// Every download is audited; one that cannot be is refused.
	if s.o.Devices != nil {
		p, _ := webauth.PrincipalFrom(ctx)
		sum := sha256.Sum256(c.Raw)
		detail := fmt.Sprintf("downloaded through the API as %s, sha256 %s", name, hex.EncodeToString(sum[:]))
		if err := s.o.Devices.RecordCAExport(ctx, p.Actor(), detail); err != nil {
			return nil, s.fail(ctx, err, "")
		}
	}
	return out, nil
}
