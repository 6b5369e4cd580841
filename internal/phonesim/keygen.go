package phonesim

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/capf-server/capf/internal/wire"
)

// keySpec reads the key a KEY_GENERATE_REQUEST asks for: KEY_TYPE (absent
// means RSA), KEY_SIZE for RSA (absent means 2048), CURVE for EC (absent
// means P-256).
func keySpec(m *wire.Message) (KeySpec, error) {
	spec := KeySpec{Type: wire.KeyRSA}
	if m.Has(wire.TagKeyType) {
		v, err := m.Uint8(wire.TagKeyType)
		if err != nil {
			return spec, err
		}
		spec.Type = wire.KeyType(v)
	}
	switch spec.Type {
	case wire.KeyRSA:
		spec.Bits = DefaultRSABits
		if m.Has(wire.TagKeySize) {
			v, err := m.Uint(wire.TagKeySize)
			if err != nil {
				return spec, err
			}
			spec.Bits = int(v)
		}
	case wire.KeyEC:
		spec.Curve = wire.CurveP256
		if m.Has(wire.TagCurve) {
			v, err := m.Uint8(wire.TagCurve)
			if err != nil {
				return spec, err
			}
			spec.Curve = wire.Curve(v)
		}
	default:
		return spec, fmt.Errorf("unknown key type %s", spec.Type)
	}
	return spec, nil
}

// keyGenerate answers KEY_GENERATE_REQUEST with the public key of a new
// pending key pair, or with REASON 7 and no PUBLIC_KEY when generation fails
// (or the FailKeygen fault applies).
func (s *session) keyGenerate(ctx context.Context, m *wire.Message) error {
	fail := func(why string, args ...any) error {
		s.log.Warn("key generation failed: "+why, args...)
		return s.answer(m, s.reply(wire.CmdKeyGenerateResponse).AddUint8(wire.TagReason, uint8(wire.ReasonRefused)))
	}
	spec, err := keySpec(m)
	if err != nil {
		return fail("bad request", "err", err)
	}
	if s.r.failKeygen > 0 {
		s.r.failKeygen--
		return fail("FailKeygen fault", "key", spec)
	}
	start := time.Now()
	key, genErr, err := s.generate(ctx, spec)
	if err != nil {
		return err
	}
	if genErr != nil {
		return fail("generator error", "key", spec, "err", genErr)
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return fail("encode public key", "key", spec, "err", err)
	}
	if err := s.r.st.setPending(key); err != nil {
		return fmt.Errorf("save pending key: %w", err)
	}
	s.log.Info("key generated", "key", spec, "took", time.Since(start).Round(time.Millisecond))
	return s.answer(m, s.reply(wire.CmdKeyGenerateResponse).Add(wire.TagPublicKey, pub))
}

// generate makes the key while taking at least KeygenDelay, sending
// REQUEST_IN_PROGRESS every ProgressInterval meanwhile. genErr is the
// generator's failure; err a communication failure or the end of ctx.
func (s *session) generate(ctx context.Context, spec KeySpec) (key crypto.Signer, genErr, err error) {
	type result struct {
		key crypto.Signer
		err error
	}
	done := make(chan result, 1)
	go func() {
		k, err := s.r.c.KeyGen(ctx, spec)
		done <- result{k, err}
	}()
	var delay <-chan time.Time
	if d := s.r.c.KeygenDelay; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		delay = t.C
	}
	var tick <-chan time.Time
	if iv := s.r.c.ProgressInterval; iv > 0 {
		t := time.NewTicker(iv)
		defer t.Stop()
		tick = t.C
	}
	var res *result
	for res == nil || delay != nil {
		select {
		case <-ctx.Done():
			return nil, nil, context.Cause(ctx)
		case r := <-done:
			res = &r
		case <-delay:
			delay = nil
		case <-tick:
			if err := s.send(s.reply(wire.CmdRequestInProgress)); err != nil {
				return nil, nil, err
			}
		}
	}
	if res.err == nil && res.key == nil {
		res.err = fmt.Errorf("generator returned no key")
	}
	return res.key, res.err, nil
}
