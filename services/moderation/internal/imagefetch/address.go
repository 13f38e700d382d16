package imagefetch

import (
	"fmt"
	"net/netip"
	"syscall"
)

// blockedPrefixes are special-purpose ranges (IANA IPv4 and IPv6
// Special-Purpose Address Registries) that netip's predicates do not
// cover and that never hold a public CDN.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT shared address space
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
}

// nat64 and sixToFour are IPv6 prefixes whose addresses carry an IPv4 address
// that routers translate to: NAT64 (64:ff9b::/96, the IPv4 address in
// the last four bytes) and 6to4 (2002::/16, in bytes 2 to 5).
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// CheckPublic returns an error matching ErrBlockedAddress unless addr is
// an ordinary public unicast address. IPv4-mapped IPv6 addresses are
// judged by their IPv4 form, and NAT64 and 6to4 addresses by the IPv4
// address inside them.
func CheckPublic(addr netip.Addr) error {
	addr = addr.Unmap()
	if v4, ok := embedded(addr); ok {
		addr = v4
	}
	if reason := blockedReason(addr); reason != "" {
		return fmt.Errorf("%w: %s is %s", ErrBlockedAddress, addr, reason)
	}
	return nil
}

func embedded(addr netip.Addr) (netip.Addr, bool) {
	b := addr.As16()
	switch {
	case !addr.Is6():
		return addr, false
	case nat64.Contains(addr):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case sixToFour.Contains(addr):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return addr, false
}

func blockedReason(addr netip.Addr) string {
	switch {
	case !addr.IsValid():
		return "invalid"
	case addr.IsUnspecified():
		return "unspecified"
	case addr.IsLoopback():
		return "loopback"
	case addr.IsPrivate():
		return "private"
	case addr.IsLinkLocalUnicast():
		return "link-local"
	case addr.IsMulticast():
		return "multicast"
	}
	for _, p := range blockedPrefixes {
		if p.Contains(addr) {
			return "special-purpose (" + p.String() + ")"
		}
	}
	return ""
}

// control returns a net.Dialer Control hook that runs check on the
// address about to be connected to. It runs after DNS resolution and
// before the connection starts, for every address tried.
func control(check func(netip.Addr) error) func(string, string, syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: unparsable dial address %q", ErrBlockedAddress, address)
		}
		return check(ap.Addr())
	}
}
