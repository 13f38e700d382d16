package imagefetch_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/genrelay/genrelay/services/moderation/internal/imagefetch"
)

func TestAllowlistMatching(t *testing.T) {
	a, err := imagefetch.NewAllowlist([]string{"cdn.leonardo.ai", "*.images.example.com"})
	if err != nil {
		t.Fatalf("new allowlist: %v", err)
	}
	tests := []struct {
		url     string
		allowed bool
	}{
		{"https://cdn.leonardo.ai/a.jpg", true},
		{"https://a.images.example.com/a.jpg", true},
		{"https://a.b.images.example.com/a.jpg", true},
		{"https://images.example.com/a.jpg", false},
		{"https://evilimages.example.com/a.jpg", false},
		{"https://leonardo.ai/a.jpg", false},
		{"https://x.cdn.leonardo.ai/a.jpg", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := a.Check(tt.url)
			if got := err == nil; got != tt.allowed {
				t.Errorf("allowed = %v, want %v (err %v)", got, tt.allowed, err)
			}
		})
	}
}

func TestAllowlistEmptyURLNamed(t *testing.T) {
	a, err := imagefetch.NewAllowlist(imagefetch.DefaultAllowedHosts)
	if err != nil {
		t.Fatalf("new allowlist: %v", err)
	}

	_, err = a.Check("")
	if !errors.Is(err, imagefetch.ErrNotAllowed) {
		t.Errorf("Check(\"\") = %v, want ErrNotAllowed", err)
	}
	if err == nil || !strings.Contains(err.Error(), "has no url") {
		t.Errorf("Check(\"\") = %v, want an error naming the missing url", err)
	}
}

func TestAllowlistRejectsBadEntries(t *testing.T) {
	for _, entry := range []string{"", "*.", "cdn.*.ai", "https://cdn.leonardo.ai", "cdn.leonardo.ai:443", "a b"} {
		if _, err := imagefetch.NewAllowlist([]string{entry}); err == nil {
			t.Errorf("NewAllowlist(%q) accepted a bad entry", entry)
		}
	}
}

func TestCheckPublic(t *testing.T) {
	blocked := []string{
		"127.0.0.1", "127.8.9.10", "10.0.0.1", "10.255.255.255", "172.16.5.4",
		"192.168.1.1", "169.254.169.254", "100.64.0.1", "100.127.255.254",
		"0.0.0.0", "0.1.2.3", "224.0.0.1", "255.255.255.255", "240.0.0.1",
		"198.18.0.1", "::", "::1", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
		"64:ff9b::a00:1", "64:ff9b::7f00:1", "2002:a00:1::1", "2002:a9fe:a9fe::",
	}
	for _, s := range blocked {
		if err := imagefetch.CheckPublic(netip.MustParseAddr(s)); !errors.Is(err, imagefetch.ErrBlockedAddress) {
			t.Errorf("CheckPublic(%s) = %v, want ErrBlockedAddress", s, err)
		}
	}

	public := []string{"104.18.2.3", "151.101.1.1", "2606:4700::1111", "::ffff:104.18.2.3", "64:ff9b::6812:203"}
	for _, s := range public {
		if err := imagefetch.CheckPublic(netip.MustParseAddr(s)); err != nil {
			t.Errorf("CheckPublic(%s) = %v, want nil", s, err)
		}
	}
}
