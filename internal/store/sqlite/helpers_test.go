package sqlite

import (
	"context"

	"github.com/capf-server/capf/internal/device"
)

// startAttempt claims a device and returns the attempt id.
func startAttempt(s device.Store, ctx context.Context, a device.Attempt) (int64, error) {
	c, err := s.StartAttempt(ctx, a)
	return c.AttemptID, err
}

// importDevices imports ds as they are.
func importDevices(s device.Store, ctx context.Context, ds []device.Device) (device.ImportCounts, error) {
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.Name
	}
	return s.ImportDevices(ctx, names, device.CLIActor("test"), func(i int, _ *device.Device) (device.Device, error) {
		return ds[i], nil
	})
}
