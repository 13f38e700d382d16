package sourceip_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"testing"

	"github.com/genrelay/genrelay/services/ingress/internal/sourceip"
)

func mustPrefixes(t *testing.T, list string) []netip.Prefix {
	t.Helper()

	prefixes, err := sourceip.ParsePrefixes(list)
	if err != nil {
		t.Fatalf("ParsePrefixes(%q): %v", list, err)
	}
	return prefixes
}

func TestParseAllowlist(t *testing.T) {
	tests := []struct {
		name string
		list string
		want []string
	}{
		{name: "blank", list: " ", want: nil},
		{name: "cidr", list: "192.0.2.0/24", want: []string{"192.0.2.0/24"}},
		{name: "cidr with host bits", list: "192.0.2.7/24", want: []string{"192.0.2.0/24"}},
		{name: "bare ipv4", list: "192.0.2.7", want: []string{"192.0.2.7/32"}},
		{name: "bare ipv6", list: "2001:db8::1", want: []string{"2001:db8::1/128"}},
		{name: "mapped ipv4", list: "::ffff:192.0.2.7", want: []string{"192.0.2.7/32"}},
		{
			name: "spaces and several",
			list: " 192.0.2.0/24 , 2001:db8::/32 ",
			want: []string{"192.0.2.0/24", "2001:db8::/32"},
		},
		{
			name: "leonardo preset",
			list: "Leonardo",
			want: []string{
				"35.173.108.170/32", "34.239.69.60/32", "52.73.75.186/32",
				"3.229.99.26/32", "44.218.0.197/32", "174.129.230.221/32",
			},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefixes, err := sourceip.ParseAllowlist(tt.list)
			if err != nil {
				t.Fatalf("ParseAllowlist(%q): %v", tt.list, err)
			}

			var got []string
			for _, p := range prefixes {
				got = append(got, p.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseAllowlist(%q) = %v, want %v", tt.list, got, tt.want)
			}
		})
	}
}

func TestParsePrefixesErrors(t *testing.T) {
	tests := []struct {
		name string
		list string
	}{
		{name: "garbage", list: "example.com"},
		{name: "bad length", list: "192.0.2.0/33"},
		{name: "empty entry", list: "192.0.2.0/24,,198.51.100.1"},
		{name: "port", list: "192.0.2.1:80"},
		{name: "preset where not allowed", list: "leonardo"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sourceip.ParsePrefixes(tt.list)
			if !errors.Is(err, sourceip.ErrInvalidPrefix) {
				t.Fatalf("ParsePrefixes(%q) error = %v, want ErrInvalidPrefix", tt.list, err)
			}
		})
	}
}

func TestAllowlistAllows(t *testing.T) {
	prefixes, err := sourceip.ParseAllowlist("leonardo, 10.1.0.0/16, 2001:db8::/32")
	if err != nil {
		t.Fatalf("ParseAllowlist: %v", err)
	}
	allowlist := sourceip.NewAllowlist(prefixes)

	tests := []struct {
		addr string
		want bool
	}{
		{addr: "35.173.108.170", want: true},
		{addr: "174.129.230.221", want: true},
		{addr: "35.173.108.171", want: false},
		{addr: "10.1.200.3", want: true},
		{addr: "10.2.0.1", want: false},
		{addr: "::ffff:10.1.0.9", want: true},
		{addr: "2001:db8:1::5", want: true},
		{addr: "2001:db9::5", want: false},
		{addr: "fe80::1%eth0", want: false},
	}

	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got := allowlist.Allows(netip.MustParseAddr(tt.addr))
			if got != tt.want {
				t.Errorf("Allows(%s) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}

	if allowlist.Allows(netip.Addr{}) {
		t.Error("Allows(invalid address) = true, want false")
	}
	if sourceip.NewAllowlist(nil).Allows(netip.MustParseAddr("192.0.2.1")) {
		t.Error("empty allowlist allows 192.0.2.1")
	}
}

func TestClientAddr(t *testing.T) {
	resolver := sourceip.NewResolver(mustPrefixes(t, "10.0.0.0/8, fd00::/8"))

	tests := []struct {
		name    string
		peer    string
		xff     []string
		want    string
		wantErr error
	}{
		{name: "direct peer", peer: "203.0.113.5:4000", want: "203.0.113.5"},
		{
			name: "spoofed header from untrusted peer",
			peer: "203.0.113.5:4000",
			xff:  []string{"35.173.108.170"},
			want: "203.0.113.5",
		},
		{
			name: "trusted proxy without header",
			peer: "10.0.0.2:4000",
			want: "10.0.0.2",
		},
		{
			name: "trusted proxy",
			peer: "10.0.0.2:4000",
			xff:  []string{"35.173.108.170"},
			want: "35.173.108.170",
		},
		{
			name: "rightmost untrusted wins over spoofed left entries",
			peer: "10.0.0.2:4000",
			xff:  []string{"1.1.1.1, 35.173.108.170, 10.0.0.9"},
			want: "35.173.108.170",
		},
		{
			name: "several headers read as one list",
			peer: "10.0.0.2:4000",
			xff:  []string{"1.1.1.1, 198.51.100.4", "10.0.0.7", " 10.0.0.8 "},
			want: "198.51.100.4",
		},
		{
			name: "spaces and blank entries",
			peer: "10.0.0.2:4000",
			xff:  []string{" ,  198.51.100.4 ,, "},
			want: "198.51.100.4",
		},
		{
			name: "every hop trusted",
			peer: "10.0.0.2:4000",
			xff:  []string{"10.9.9.9, 10.0.0.3"},
			want: "10.9.9.9",
		},
		{
			name: "entries with ports",
			peer: "10.0.0.2:4000",
			xff:  []string{"198.51.100.4:5555, 10.0.0.3:80"},
			want: "198.51.100.4",
		},
		{
			name: "ipv6 peer and entries",
			peer: "[fd00::2]:4000",
			xff:  []string{"2001:db8::7, [fd00::9]:443"},
			want: "2001:db8::7",
		},
		{
			name: "bracketed ipv6 entry",
			peer: "[fd00::2]:4000",
			xff:  []string{"[2001:db8::7]"},
			want: "2001:db8::7",
		},
		{
			name: "ipv4-mapped peer is trusted",
			peer: "[::ffff:10.0.0.2]:4000",
			xff:  []string{"198.51.100.4"},
			want: "198.51.100.4",
		},
		{
			name: "garbage left of the client is ignored",
			peer: "10.0.0.2:4000",
			xff:  []string{"not-an-ip, 198.51.100.4"},
			want: "198.51.100.4",
		},
		{
			name:    "garbage in the client position",
			peer:    "10.0.0.2:4000",
			xff:     []string{"198.51.100.4, unknown, 10.0.0.3"},
			wantErr: sourceip.ErrInvalidForwardedFor,
		},
		{
			name:    "invalid peer",
			peer:    "pipe",
			wantErr: sourceip.ErrInvalidPeer,
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}

			got, err := resolver.ClientAddr(r)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ClientAddr() error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				return
			}
			if got.String() != tt.want {
				t.Errorf("ClientAddr() = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestClientAddrWithoutTrustedProxies(t *testing.T) {
	resolver := sourceip.NewResolver(nil)

	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.RemoteAddr = "10.0.0.2:4000"
	r.Header.Set("X-Forwarded-For", "35.173.108.170")

	got, err := resolver.ClientAddr(r)
	if err != nil {
		t.Fatalf("ClientAddr(): %v", err)
	}
	if want := "10.0.0.2"; got.String() != want {
		t.Errorf("ClientAddr() = %s, want %s", got, want)
	}
}
