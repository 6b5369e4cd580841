package adminhttp

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// MaxConns is how many connections the admin listener serves at once. It is
// small on purpose: monitoring needs a handful, and a flood of connections
// to this port must not take descriptors from the phones or the database.
const MaxConns = 16

// LimitListener returns a listener that holds at most n accepted
// connections open at once: when n are open, Accept waits until one is
// closed, leaving further connections in the kernel's backlog.
func LimitListener(ln net.Listener, n int) net.Listener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	sem       chan struct{}
	closeOnce sync.Once
	done      chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// NewServer returns the HTTP server for h with the short timeouts an admin
// listener needs: a client that connects and says nothing, or reads
// nothing, gives its slot back within seconds.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}
