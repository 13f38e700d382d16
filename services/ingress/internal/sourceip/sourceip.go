// Package sourceip finds the client address of a request, behind trusted
// reverse proxies if need be, and checks it against an allowlist.
//
// The client address is the TCP peer, unless the peer is a trusted proxy:
// then it is the rightmost X-Forwarded-For entry that is not a trusted
// proxy. Entries further left come from the client or from untrusted
// proxies, so they are never read.
package sourceip

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// LeonardoPreset is the allowlist entry that stands for the addresses
// Leonardo.Ai documents as the sources of its webhook callbacks.
const LeonardoPreset = "leonardo"

// leonardoAddresses are the webhook source addresses that Leonardo.Ai
// lists in its webhook guide.
var leonardoAddresses = []string{
	"35.173.108.170",
	"34.239.69.60",
	"52.73.75.186",
	"3.229.99.26",
	"44.218.0.197",
	"174.129.230.221",
}

// Errors returned by this package.
var (
	// ErrInvalidPrefix is returned by ParsePrefixes and ParseAllowlist for
	// an entry that is neither an IP address nor a CIDR prefix.
	ErrInvalidPrefix = errors.New("invalid IP address or CIDR prefix")
	// ErrInvalidPeer is returned by ClientAddr when the request's remote
	// address is not an IP address, which net/http never produces.
	ErrInvalidPeer = errors.New("invalid peer address")
	// ErrInvalidForwardedFor is returned by ClientAddr when the
	// X-Forwarded-For entry that names the client is not an IP address.
	ErrInvalidForwardedFor = errors.New("invalid X-Forwarded-For entry")
)

// headerForwardedFor is the de facto standard proxy header.
const headerForwardedFor = "X-Forwarded-For"

// ParsePrefixes parses a comma-separated list of CIDR prefixes and bare IP
// addresses; a bare address becomes a single-address prefix. A blank list
// returns no prefixes.
func ParsePrefixes(list string) ([]netip.Prefix, error) {
	return parseList(list, false)
}

// ParseAllowlist parses a list like ParsePrefixes does, and also accepts
// the entry "leonardo" for Leonardo.Ai's documented source addresses.
func ParseAllowlist(list string) ([]netip.Prefix, error) {
	return parseList(list, true)
}

func parseList(list string, allowPreset bool) ([]netip.Prefix, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}

	var prefixes []netip.Prefix
	for i, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if allowPreset && strings.EqualFold(entry, LeonardoPreset) {
			prefixes = append(prefixes, leonardoPrefixes()...)
			continue
		}

		prefix, err := parsePrefix(entry)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d %q", ErrInvalidPrefix, i+1, entry)
		}
		prefixes = append(prefixes, prefix)
	}
	return prefixes, nil
}

func parsePrefix(entry string) (netip.Prefix, error) {
	if strings.Contains(entry, "/") {
		prefix, err := netip.ParsePrefix(entry)
		if err != nil {
			return netip.Prefix{}, err
		}
		return prefix.Masked(), nil
	}

	addr, err := netip.ParseAddr(entry)
	if err != nil {
		return netip.Prefix{}, err
	}
	addr = normalize(addr)
	return netip.PrefixFrom(addr, addr.BitLen()), nil
}

func leonardoPrefixes() []netip.Prefix {
	prefixes := make([]netip.Prefix, len(leonardoAddresses))
	for i, s := range leonardoAddresses {
		addr := netip.MustParseAddr(s)
		prefixes[i] = netip.PrefixFrom(addr, addr.BitLen())
	}
	return prefixes
}

// Allowlist is a set of source prefixes.
type Allowlist struct {
	prefixes []netip.Prefix
}

// NewAllowlist returns an allowlist of prefixes. An empty allowlist
// allows no address.
func NewAllowlist(prefixes []netip.Prefix) *Allowlist {
	return &Allowlist{prefixes: prefixes}
}

// Allows reports whether addr is in one of the prefixes. An IPv4-mapped
// IPv6 address matches as its IPv4 address; an invalid address matches
// nothing.
func (a *Allowlist) Allows(addr netip.Addr) bool {
	return containsAddr(a.prefixes, addr)
}

// Resolver finds the client address of requests that may have passed
// through trusted proxies.
type Resolver struct {
	trusted []netip.Prefix
}

// NewResolver returns a resolver that reads X-Forwarded-For only from
// peers in trusted. With no trusted prefixes the client is always the
// peer.
func NewResolver(trusted []netip.Prefix) *Resolver {
	return &Resolver{trusted: trusted}
}

// ClientAddr returns the client address of r. When the peer is a trusted
// proxy, it walks the X-Forwarded-For entries of every such header from
// right to left, skipping blank entries and trusted proxies, and returns
// the first other address. If every entry is a trusted proxy, the
// leftmost one is the client.
func (res *Resolver) ClientAddr(r *http.Request) (netip.Addr, error) {
	peer, err := parseHost(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: %q", ErrInvalidPeer, r.RemoteAddr)
	}
	if !containsAddr(res.trusted, peer) {
		return peer, nil
	}

	hops := forwardedFor(r.Header)
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		addr, err := parseHost(hops[i])
		if err != nil {
			return netip.Addr{}, fmt.Errorf("%w: %q",
				ErrInvalidForwardedFor, truncate(hops[i]))
		}

		client = addr
		if !containsAddr(res.trusted, addr) {
			break
		}
	}
	return client, nil
}

// forwardedFor returns the non-blank X-Forwarded-For entries of h in
// order; several headers count as one list joined by commas.
func forwardedFor(h http.Header) []string {
	var hops []string
	for _, value := range h.Values(headerForwardedFor) {
		for _, hop := range strings.Split(value, ",") {
			if hop = strings.TrimSpace(hop); hop != "" {
				hops = append(hops, hop)
			}
		}
	}
	return hops
}

// parseHost parses an address with or without a port, in the forms
// 192.0.2.1, 192.0.2.1:80, 2001:db8::1, [2001:db8::1] and
// [2001:db8::1]:80.
func parseHost(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normalize(ap.Addr()), nil
	}

	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	return normalize(addr), nil
}

// normalize drops the IPv6 zone and maps IPv4-mapped IPv6 addresses to
// IPv4, so that ::ffff:192.0.2.1 matches 192.0.2.0/24.
func normalize(addr netip.Addr) netip.Addr {
	return addr.WithZone("").Unmap()
}

func containsAddr(prefixes []netip.Prefix, addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}

	addr = normalize(addr)
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// truncate shortens client-supplied text before it goes into an error.
func truncate(s string) string {
	const maxLength = 64
	if len(s) <= maxLength {
		return s
	}
	return s[:maxLength] + "..."
}
