//go:build unix

package tcpbind

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Socket is a TCP socket bound to an address and not yet listening.
type Socket struct {
	mu   sync.Mutex
	fd   int // -1 once listening or closed
	name string
}

// Bind resolves addr ("host:port", as net.Listen takes it) and binds a TCP
// socket to it without listening. As net.Listen does, a wildcard or empty
// host binds both IPv4 and IPv6 where the system can, and SO_REUSEADDR is
// set.
func Bind(ctx context.Context, addr string) (*Socket, error) {
	ips, port, zone, err := resolve(ctx, addr)
	if err != nil {
		return nil, err
	}
	var fd int
	if ips == nil {
		// The wildcard: one dual-stack IPv6 socket, or IPv4 alone where
		// the system has no IPv6.
		fd, err = bindSocket(syscall.AF_INET6, &syscall.SockaddrInet6{Port: port}, false)
		if err == syscall.EAFNOSUPPORT {
			fd, err = bindSocket(syscall.AF_INET, &syscall.SockaddrInet4{Port: port}, false)
		}
	} else if ip4 := ips.To4(); ip4 != nil {
		sa := &syscall.SockaddrInet4{Port: port}
		copy(sa.Addr[:], ip4)
		fd, err = bindSocket(syscall.AF_INET, sa, false)
	} else {
		sa := &syscall.SockaddrInet6{Port: port, ZoneId: zoneID(zone)}
		copy(sa.Addr[:], ips.To16())
		fd, err = bindSocket(syscall.AF_INET6, sa, true)
	}
	if err != nil {
		return nil, fmt.Errorf("bind tcp %s: %w", addr, err)
	}
	return &Socket{fd: fd, name: addr}, nil
}

// resolve returns the IP to bind (nil: the wildcard), the port and the
// IPv6 zone of addr. A host name binds its first address, IPv4 first, as
// net.Listen does.
func resolve(ctx context.Context, addr string) (net.IP, int, string, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, 0, "", err
	}
	port, err := net.DefaultResolver.LookupPort(ctx, "tcp", portStr)
	if err != nil {
		return nil, 0, "", err
	}
	if host == "" {
		return nil, port, "", nil
	}
	h, zone, _ := strings.Cut(host, "%")
	if ip := net.ParseIP(h); ip != nil {
		if ip.IsUnspecified() {
			return nil, port, "", nil
		}
		return ip, port, zone, nil
	}
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
	if err != nil {
		return nil, 0, "", err
	}
	for _, ip := range ips {
		if ip.To4() != nil {
			return ip, port, "", nil
		}
	}
	if len(ips) == 0 {
		return nil, 0, "", fmt.Errorf("%s: no address", host)
	}
	return ips[0], port, "", nil
}

// zoneID is the interface index of an IPv6 zone (a name or a number).
func zoneID(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	n, _ := strconv.ParseUint(zone, 10, 32)
	return uint32(n)
}

// bindSocket opens a close-on-exec TCP socket of family and binds it to sa.
func bindSocket(family int, sa syscall.Sockaddr, v6only bool) (int, error) {
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM, syscall.IPPROTO_TCP)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, err
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	if family == syscall.AF_INET6 {
		v := 0
		if v6only {
			v = 1
		}
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, v); err != nil {
			syscall.Close(fd)
			return -1, err
		}
	}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	// SO_REUSEADDR let the bind pass connections of a previous run still in
	// TIME_WAIT. Held while not listening, it would also let another
	// socket with SO_REUSEADDR bind the same port (Linux allows that until
	// one listens), so it is off until Listen.
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 0); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}

// Listen starts accepting on the socket and returns it as a listener,
// which the caller closes; the Socket itself is spent.
func (s *Socket) Listen() (net.Listener, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return nil, fmt.Errorf("listen on %s: %w", s.name, net.ErrClosed)
	}
	if err := syscall.SetsockoptInt(s.fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", s.name, os.NewSyscallError("setsockopt", err))
	}
	if err := syscall.Listen(s.fd, backlog()); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", s.name, os.NewSyscallError("listen", err))
	}
	f := os.NewFile(uintptr(s.fd), "tcp:"+s.name)
	s.fd = -1
	defer f.Close() // the listener holds a duplicate
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", s.name, err)
	}
	return ln, nil
}

// Close releases a socket that is not listening; after Listen it does
// nothing (close the listener).
func (s *Socket) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		return nil
	}
	err := syscall.Close(s.fd)
	s.fd = -1
	return err
}

// backlog is the system's maximum listen backlog, as net.Listen uses it.
func backlog() int {
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		return syscall.SOMAXCONN
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n <= 0 {
		return syscall.SOMAXCONN
	}
	return min(n, 1<<16-1)
}
