package tlstest_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"

	"github.com/genrelay/genrelay/pkg/tlstest"
)

func TestWriteCertificateCoversHosts(t *testing.T) {
	certFile, keyFile := tlstest.WriteCertificate(t, "127.0.0.1", "moderation.test")

	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatalf("load key pair: %v", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}

	if len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("IP addresses = %v, want [127.0.0.1]", cert.IPAddresses)
	}
	if err := cert.VerifyHostname("moderation.test"); err != nil {
		t.Errorf("VerifyHostname(moderation.test): %v", err)
	}
}
