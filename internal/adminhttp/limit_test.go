package adminhttp

import (
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListener(inner, 2)
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	recv := func(wait time.Duration) net.Conn {
		select {
		case c := <-accepted:
			return c
		case <-time.After(wait):
			return nil
		}
	}
	first, second := recv(2*time.Second), recv(2*time.Second)
	if first == nil || second == nil {
		t.Fatal("the first two connections were not accepted")
	}
	if c := recv(200 * time.Millisecond); c != nil {
		t.Fatal("a third connection was accepted while two were open")
	}
	// Closing twice gives back one slot, not two.
	first.Close()
	first.Close()
	third := recv(2 * time.Second)
	if third == nil {
		t.Fatal("the third connection was not accepted after one closed")
	}
	defer third.Close()
	ln.Close()
	if _, ok := <-accepted; ok {
		t.Fatal("accepted after Close")
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
	second.Close()
}

func TestNewServerTimeouts(t *testing.T) {
	s := NewServer(http.NotFoundHandler())
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.IdleTimeout <= 0 {
		t.Errorf("a timeout is unset: %+v", s)
	}
}
