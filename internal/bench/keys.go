package bench

import (
	"context"
	"crypto"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/capf-server/capf/internal/phonesim"
)

// keyPool hands out pre-generated key pairs round robin, so that the timed
// phase spends no client CPU on key generation. A phone key may repeat
// across devices: the server does not care, and the figure is the server's.
type keyPool struct {
	spec phonesim.KeySpec
	keys []crypto.Signer
	next atomic.Uint64
}

// newKeyPool generates n key pairs of spec, in parallel.
func newKeyPool(ctx context.Context, spec phonesim.KeySpec, n int) (*keyPool, error) {
	p := &keyPool{spec: spec, keys: make([]crypto.Signer, n)}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		idx  atomic.Int64
	)
	for range min(n, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for {
				i := int(idx.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				k, err := phonesim.GenerateKey(ctx, spec)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				p.keys[i] = k
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

// KeyGen is a [phonesim.KeyGenFunc]: a pooled key when the server asks for
// the pool's kind, else a fresh one.
func (p *keyPool) KeyGen(ctx context.Context, spec phonesim.KeySpec) (crypto.Signer, error) {
	if spec != p.spec {
		return phonesim.GenerateKey(ctx, spec)
	}
	i := p.next.Add(1) - 1
	return p.keys[i%uint64(len(p.keys))], nil
}
