package imagefetch

import (
	"errors"
	"testing"
)

// TestDefaultControlRejectsPrivateTargets runs the dialer's Control hook
// directly, so addresses outside loopback are checked without sending a
// packet to them.
func TestDefaultControlRejectsPrivateTargets(t *testing.T) {
	hook := control(CheckPublic)
	tests := []struct {
		address string
		blocked bool
	}{
		{"127.0.0.1:443", true},
		{"10.1.2.3:443", true},
		{"169.254.169.254:80", true},
		{"[::1]:443", true},
		{"[::ffff:10.1.2.3]:443", true},
		{"100.64.1.1:443", true},
		{"[fe80::1%eth0]:443", true},
		{"104.18.2.3:443", false},
	}
	for _, tt := range tests {
		t.Run(tt.address, func(t *testing.T) {
			err := hook("tcp", tt.address, nil)
			if got := errors.Is(err, ErrBlockedAddress); got != tt.blocked {
				t.Errorf("blocked = %v, want %v (err %v)", got, tt.blocked, err)
			}
		})
	}
}
