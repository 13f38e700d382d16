// Package imagefetch decides which image URLs genrelay may hand to a
// provider or download itself, and downloads images safely for providers
// that need the bytes.
//
// Two checks guard every request. Allowlist.Check accepts only https URLs
// whose host is on the allowlist (exact names or "*.suffix" entries), so
// a URL anywhere else is never requested. The Fetcher's dialer then
// checks each address after DNS resolution and before connecting, in the
// net.Dialer Control hook. It rejects private, loopback, link-local,
// unspecified, multicast, CGNAT and other special-purpose addresses
// whatever host name led there, so DNS rebinding and redirects are
// covered too. Redirects are capped and each target is checked again.
package imagefetch

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// DefaultAllowedHosts is Leonardo.Ai's image CDN.
var DefaultAllowedHosts = []string{"cdn.leonardo.ai"}

// Errors returned by Check, Fetch and the dialer.
var (
	// ErrNotAllowed is a URL that is not https, carries credentials, or
	// whose host is not on the allowlist. It was not requested.
	ErrNotAllowed = errors.New("image url not allowed")
	// ErrBlockedAddress is a host that resolved to an address genrelay
	// never connects to. No connection was made.
	ErrBlockedAddress = errors.New("image host resolves to a blocked address")
	// ErrTooManyRedirects is a chain of redirects longer than the limit.
	ErrTooManyRedirects = errors.New("too many redirects")
	// ErrTooLarge is an image larger than the configured limit.
	ErrTooLarge = errors.New("image exceeds the size limit")
	// ErrUnsupportedFormat is a body that is neither JPEG nor PNG by its
	// magic bytes. The Content-Type header is not trusted.
	ErrUnsupportedFormat = errors.New("image is neither JPEG nor PNG")
)

// Allowlist holds the hosts images may come from.
type Allowlist struct {
	exact    map[string]bool
	suffixes []string
}

// NewAllowlist parses entries: a host name ("cdn.leonardo.ai") matches
// itself only, and "*.example.com" matches any name below example.com but
// not example.com itself. Matching ignores case and a trailing dot.
func NewAllowlist(entries []string) (*Allowlist, error) {
	a := &Allowlist{exact: map[string]bool{}}
	for _, e := range entries {
		e = normalizeHost(e)
		switch {
		case e == "" || e == "*." || strings.ContainsAny(e, "/@ ") ||
			(strings.Contains(e, ":") && !isIPv6(e)):
			return nil, fmt.Errorf("invalid image host %q: want a host name or *.suffix", e)
		case strings.HasPrefix(e, "*."):
			a.suffixes = append(a.suffixes, e[1:])
		case strings.Contains(e, "*"):
			return nil, fmt.Errorf("invalid image host %q: use a leading \"*.\" for a domain suffix", e)
		default:
			a.exact[e] = true
		}
	}
	if len(a.exact) == 0 && len(a.suffixes) == 0 {
		return nil, errors.New("image host allowlist is empty")
	}
	return a, nil
}

// Check parses rawURL and returns it when its scheme is https, it has no
// user info and its host is allowed. Otherwise it returns an error that
// matches ErrNotAllowed.
func (a *Allowlist) Check(rawURL string) (*url.URL, error) {
	if strings.TrimSpace(rawURL) == "" {
		return nil, fmt.Errorf("%w: the image has no url", ErrNotAllowed)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: unparsable url", ErrNotAllowed)
	}
	if err := a.checkURL(u); err != nil {
		return nil, err
	}
	return u, nil
}

func (a *Allowlist) checkURL(u *url.URL) error {
	switch {
	case u.Scheme != "https":
		return fmt.Errorf("%w: scheme %q is not https", ErrNotAllowed, u.Scheme)
	case u.User != nil:
		return fmt.Errorf("%w: url carries user info", ErrNotAllowed)
	case !a.hostAllowed(u.Hostname()):
		return fmt.Errorf("%w: host %q is not on the allowlist", ErrNotAllowed, u.Hostname())
	}
	return nil
}

func (a *Allowlist) hostAllowed(host string) bool {
	host = normalizeHost(host)
	if host == "" {
		return false
	}
	if a.exact[host] {
		return true
	}
	for _, s := range a.suffixes {
		if strings.HasSuffix(host, s) && len(host) > len(s) {
			return true
		}
	}
	return false
}

func isIPv6(s string) bool {
	addr, err := netip.ParseAddr(s)
	return err == nil && addr.Is6()
}

func normalizeHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
}
