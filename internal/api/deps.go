package api

import (
	"context"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/system"
)

// Devices is what the API needs of the device service; *device.Service
// implements it. It has no List: the API lists and counts devices only
// through Reader, for the audience of the request's principal, so no
// route a viewer may call can search, sort or count by authentication
// string.
type Devices interface {
	Now() time.Time
	Reader(seeSecrets bool) device.Reader
	Get(ctx context.Context, name string) (device.Device, error)
	History(ctx context.Context, name string, limit int) ([]device.Attempt, error)
	Fetched(ctx context.Context, name string) ([]device.FetchedCertificate, error)
	Audit(ctx context.Context, q device.AuditQuery) ([]device.AuditEvent, error)
	Add(ctx context.Context, actor device.Actor, d device.Device, generate bool) (device.Device, error)
	Change(ctx context.Context, actor device.Actor, name string, c device.Change) (device.Device, error)
	Remove(ctx context.Context, actor device.Actor, name string) error
	Import(ctx context.Context, actor device.Actor, rows []device.ImportRow) (device.ImportCounts, error)
	RecordCAExport(ctx context.Context, actor device.Actor, detail string) error
	Reset(ctx context.Context, actor device.Actor, name string) (device.Reset, error)
	ResetMatching(ctx context.Context, actor device.Actor, c device.Criteria) (device.BulkReset, error)
	LastReset(ctx context.Context, name string) (device.Reset, error)
}

// Accounts is what the API needs of the account service (account.Service).
type Accounts interface {
	Accounts(ctx context.Context) ([]account.Account, error)
	AddAccount(ctx context.Context, actor device.Actor, name string, role account.Role, password string) (account.Account, error)
	SetPassword(ctx context.Context, actor device.Actor, name, password string) error
	SetRole(ctx context.Context, actor device.Actor, name string, role account.Role) (account.Account, error)
	RemoveAccount(ctx context.Context, actor device.Actor, name string) error
	DisableAccount(ctx context.Context, actor device.Actor, name string) (account.Account, error)
	EnableAccount(ctx context.Context, actor device.Actor, name string) (account.Account, error)
	Tokens(ctx context.Context) ([]account.Token, error)
	CreateToken(ctx context.Context, actor device.Actor, owner, name string, role account.Role, ttl time.Duration) (secret string, t account.Token, err error)
	RevokeToken(ctx context.Context, actor device.Actor, name string) error
}

// System is what the API needs of the system service (system.Service):
// the service parameters and the service's activation.
type System interface {
	Parameters(ctx context.Context) ([]system.Parameter, error)
	UpdateParameters(ctx context.Context, actor device.Actor, set map[string]any) ([]system.Parameter, error)
	Activation(ctx context.Context) (system.Activation, error)
	SetActive(ctx context.Context, actor device.Actor, active bool) (system.Activation, error)
}

// Windows says when the maintenance windows are open, as the phone
// sessions see them now.
type Windows interface {
	Open(t time.Time) bool
	NextOpen(t time.Time) time.Time
}

// Campaigns is what the API needs of device.Service's bulk operations and
// fleet overview.
type Campaigns interface {
	Schedule(ctx context.Context, actor device.Actor, c device.Criteria, ch device.Change) (device.Campaign, error)
	Campaigns(ctx context.Context, limit int) ([]device.Campaign, error)
	Campaign(ctx context.Context, id int64) (device.CampaignProgress, error)
	CancelCampaign(ctx context.Context, actor device.Actor, id int64) (device.CampaignCancel, error)
	Dashboard(ctx context.Context) (device.Dashboard, error)
}
