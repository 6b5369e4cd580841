package phonesim

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// MaxServers is how many CAPF servers a phone's capfList holds.
const MaxServers = 5

// DefaultPort is the CAPF port a list entry without one gets.
const DefaultPort = 3804

// maxHostLen bounds a host name (DNS: 253 characters).
const maxHostLen = 253

// ParseServerList parses a phone's capfList written as a comma-separated
// list, e.g. "capf1.example.com,10.0.0.2:3805,[2001:db8::1]": one to
// [MaxServers] entries, each HOST or HOST:PORT (an IPv6 literal in
// brackets when it has a port), HOST a DNS name or an IP address, PORT
// 1-65535 ([DefaultPort] when left out). Blanks around entries are
// ignored. An empty entry, a bad host or port, a duplicate or too many
// entries is an error naming the entry; the result is the list as
// HOST:PORT addresses, in order.
func ParseServerList(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("server list is empty: want HOST[:PORT], up to %d separated by commas", MaxServers)
	}
	parts := strings.Split(s, ",")
	if len(parts) > MaxServers {
		return nil, fmt.Errorf("server list has %d entries: a phone's capfList holds at most %d", len(parts), MaxServers)
	}
	out := make([]string, 0, len(parts))
	seen := make(map[string]int, len(parts))
	for i, p := range parts {
		addr, err := parseServer(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("server list entry %d: %w", i+1, err)
		}
		if j, dup := seen[strings.ToLower(addr)]; dup {
			return nil, fmt.Errorf("server list entry %d: %s is entry %d already", i+1, addr, j+1)
		}
		seen[strings.ToLower(addr)] = i
		out = append(out, addr)
	}
	return out, nil
}

// parseServer checks one entry and returns it as HOST:PORT.
func parseServer(e string) (string, error) {
	if e == "" {
		return "", fmt.Errorf("empty (want HOST[:PORT])")
	}
	if strings.Contains(e, "/") {
		return "", fmt.Errorf("%q: want HOST or HOST:PORT, not a URL or a path", bound(e))
	}
	host, port := e, strconv.Itoa(DefaultPort)
	switch {
	case net.ParseIP(e) != nil:
		// A bare IP address, IPv6 included ("::1" has colons but no port).
	case strings.HasPrefix(e, "[") && strings.HasSuffix(e, "]"):
		host = e[1 : len(e)-1]
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			return "", fmt.Errorf("%q: not an IPv6 address in brackets", bound(e))
		}
	default:
		h, p, err := net.SplitHostPort(e)
		if err != nil {
			if strings.Contains(err.Error(), "missing port") {
				break // a host name alone
			}
			return "", fmt.Errorf("%q: want HOST or HOST:PORT (an IPv6 address in brackets)", bound(e))
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || strings.HasPrefix(p, "+") {
			return "", fmt.Errorf("%q: port %q is not a number from 1 to 65535", bound(e), bound(p))
		}
		host, port = h, strconv.Itoa(n)
	}
	if net.ParseIP(host) == nil {
		if err := checkHostName(host); err != nil {
			return "", fmt.Errorf("%q: %w", bound(e), err)
		}
	}
	return net.JoinHostPort(host, port), nil
}

// checkHostName accepts a DNS name: labels of letters, digits and hyphens
// (underscores too, as some internal names have them), separated by dots.
func checkHostName(h string) error {
	if h == "" {
		return fmt.Errorf("no host")
	}
	if len(h) > maxHostLen {
		return fmt.Errorf("host name longer than %d characters", maxHostLen)
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host %q is not a valid name or IP address", bound(h))
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("host %q is not a valid name or IP address", bound(h))
			}
		}
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
