package capflist

import (
	"net"
	"strconv"
	"strings"

	"github.com/capf-server/capf/internal/fault"
)

// Max is the most servers a phone's capfList holds.
const Max = 5

// maxHostLen bounds a DNS name (RFC 1035: 253 characters in text form).
const maxHostLen = 253

// Server is one entry of a capfList: the processNodeName a phone resolves
// and the phonePort it connects to. An entry of capf_servers may leave
// Port empty until Resolve gives it the node's phone port.
type Server struct {
	Host string
	Port string
}

// String returns s as host:port (an IPv6 address in brackets), or the
// host alone when s has no port yet.
func (s Server) String() string {
	if s.Port == "" {
		if strings.Contains(s.Host, ":") {
			return "[" + s.Host + "]"
		}
		return s.Host
	}
	return net.JoinHostPort(s.Host, s.Port)
}

// key identifies s for the duplicate check: host names are
// case-insensitive, and an IP address is compared as an address.
func (s Server) key() string {
	h := strings.ToLower(strings.TrimSuffix(s.Host, "."))
	if ip := net.ParseIP(s.Host); ip != nil {
		h = ip.String()
	}
	return net.JoinHostPort(h, s.Port)
}

// CheckHost accepts a DNS name (labels of letters, digits, hyphens and
// underscores, as some internal names have them, separated by dots, with
// an optional final dot) or an IP address, as phones resolve
// processNodeName. The error, Invalid, quotes at most 80 bytes of h.
func CheckHost(h string) error {
	if net.ParseIP(h) != nil {
		return nil
	}
	if h == "" {
		return fault.Invalidf("no host: want a host name or IP address")
	}
	if len(h) > maxHostLen {
		return fault.Invalidf("host %q is longer than %d characters: want a host name or IP address", bound(h), maxHostLen)
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fault.Invalidf("host %q: want a host name or IP address", bound(h))
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fault.Invalidf("host %q: want a host name or IP address", bound(h))
			}
		}
	}
	return nil
}

// CheckPort accepts a port number from 1 to 65535 in decimal, without a
// sign or leading zeros.
func CheckPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
		return fault.Invalidf("port %q: want a port number from 1 to 65535", bound(p))
	}
	return nil
}

// ParseEntry reads one entry: HOST, HOST:PORT, an IP address (an IPv6
// address bare or in brackets) or [IPv6]:PORT. Without a port, Port is
// empty.
func ParseEntry(e string) (Server, error) {
	switch {
	case e == "":
		return Server{}, fault.Invalidf("empty: want HOST or HOST:PORT")
	case net.ParseIP(e) != nil:
		return Server{Host: e}, nil // an IPv6 address has colons but no port
	case strings.HasPrefix(e, "[") && strings.HasSuffix(e, "]"):
		h := e[1 : len(e)-1]
		if ip := net.ParseIP(h); ip == nil || ip.To4() != nil {
			return Server{}, fault.Invalidf("%q: not an IPv6 address in brackets", bound(e))
		}
		return Server{Host: h}, nil
	case !strings.Contains(e, ":"):
		if err := CheckHost(e); err != nil {
			return Server{}, err
		}
		return Server{Host: e}, nil
	}
	h, p, err := net.SplitHostPort(e)
	if err != nil {
		return Server{}, fault.Invalidf("%q: want HOST or HOST:PORT (an IPv6 address with a port in brackets)", bound(e))
	}
	if err := CheckHost(h); err != nil {
		return Server{}, err
	}
	if err := CheckPort(p); err != nil {
		return Server{}, err
	}
	return Server{Host: h, Port: p}, nil
}

// Parse reads a list of entries (see ParseEntry), in order: at most Max,
// no server twice. An error, Invalid, names the first bad entry by its
// position and text. No entries gives none.
func Parse(entries []string) ([]Server, error) {
	if len(entries) > Max {
		return nil, fault.Invalidf("%d servers: a phone's capfList holds at most %d", len(entries), Max)
	}
	out := make([]Server, 0, len(entries))
	for i, e := range entries {
		s, err := ParseEntry(e)
		if err != nil {
			return nil, fault.Invalidf("entry %d %q: %s", i+1, bound(e), fault.Message(err))
		}
		out = append(out, s)
	}
	if err := unique(out); err != nil {
		return nil, err
	}
	return out, nil
}

// Resolve returns the servers a phone's capfList names: the entries (see
// Parse) in order, each without a port taking port, the port this node
// listens on for phones; with no entries, host and port alone (this
// node). The result passes Check.
func Resolve(entries []string, host, port string) ([]Server, error) {
	ss, err := Parse(entries)
	if err != nil {
		return nil, err
	}
	if len(ss) == 0 {
		ss = []Server{{Host: host}}
	}
	for i := range ss {
		if ss[i].Port == "" {
			ss[i].Port = port
		}
	}
	if err := unique(ss); err != nil {
		return nil, fault.Invalidf("%s (an entry without a port takes this node's phone port %s)", fault.Message(err), bound(port))
	}
	if err := Check(ss); err != nil {
		return nil, err
	}
	return ss, nil
}

// Check accepts a capfList a phone can use: one to Max servers, each with
// a host and a port from 1 to 65535, none twice (an entry without a port
// given the same port as another is the same server). It does not judge
// the host's spelling: what an administrator types is checked by Parse
// (and CheckHost), while this node's own host name is taken as the
// system has it (a snippet escapes it).
func Check(ss []Server) error {
	switch {
	case len(ss) == 0:
		return fault.Invalidf("no CAPF server: a phone's capfList needs at least one")
	case len(ss) > Max:
		return fault.Invalidf("%d servers: a phone's capfList holds at most %d", len(ss), Max)
	}
	for i, s := range ss {
		if s.Host == "" {
			return fault.Invalidf("server %d: no host", i+1)
		}
		if err := CheckPort(s.Port); err != nil {
			return fault.Invalidf("server %d %s: %s (the service listens on an ephemeral port?)", i+1, bound(s.Host), fault.Message(err))
		}
	}
	return unique(ss)
}

// unique refuses a server listed twice, naming both positions.
func unique(ss []Server) error {
	seen := make(map[string]int, len(ss))
	for i, s := range ss {
		if j, dup := seen[s.key()]; dup {
			return fault.Invalidf("entry %d %q: the same server as entry %d", i+1, bound(s.String()), j+1)
		}
		seen[s.key()] = i
	}
	return nil
}

// bound shortens what the user typed before it is quoted in an error.
func bound(s string) string {
	const n = 80
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Strings returns ss as host:port entries, for display.
func Strings(ss []Server) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.String()
	}
	return out
}
