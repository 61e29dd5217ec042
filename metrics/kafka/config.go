package kafka

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms.
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
)

// Secret data keys read by ConfigFromSecret (see the package documentation).
const (
	KeySASLMechanism      = "sasl.mechanism"
	KeySASLUsername       = "sasl.username"
	KeySASLPassword       = "sasl.password"
	KeyTLSEnabled         = "tls.enabled"
	KeyTLSCA              = "tls.ca.crt"
	KeyCA                 = "ca.crt"
	KeyTLSCert            = "tls.crt"
	KeyTLSKey             = "tls.key"
	KeyTLSServerName      = "tls.server-name"
	KeyTLSInsecureSkip    = "tls.insecure-skip-verify"
	KeyRequestTimeout     = "request.timeout"
	DefaultRequestTimeout = 10 * time.Second
)

// Config says how to reach the brokers.
type Config struct {
	BootstrapServers []string
	// SASL authenticates when non-nil.
	SASL *SASL
	// TLS speaks TLS when non-nil.
	TLS *TLS
	// RequestTimeout bounds one Collect, connection and retries included
	// (DefaultRequestTimeout when zero).
	RequestTimeout time.Duration

	// TLSConfig, when non-nil, is used as the client TLS configuration
	// instead of one built from TLS (for tests and callers that hold a
	// *tls.Config already; it is cloned).
	TLSConfig *tls.Config
	// ClientOpts are extra franz-go options appended last (hooks, logger).
	ClientOpts []kgo.Opt
}

// SASL is a SASL/PLAIN or SASL/SCRAM login.
type SASL struct {
	Mechanism string // MechanismPlain, MechanismScramSHA256 or MechanismScramSHA512
	Username  string
	Password  string
}

// String never shows the password.
func (s SASL) String() string {
	return fmt.Sprintf("SASL{%s %s}", s.Mechanism, s.Username)
}

// GoString (%#v) never shows the password either.
func (s SASL) GoString() string {
	return fmt.Sprintf("kafka.SASL{Mechanism:%q, Username:%q, Password:%s}", s.Mechanism, s.Username, redacted(s.Password))
}

// redacted says whether a secret is set, never what it is.
func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "<redacted>"
}

// TLS is the client side of TLS. The PEM fields are optional: without CA
// the system roots are trusted; Cert and Key go together (mutual TLS).
type TLS struct {
	CA                 []byte
	Cert, Key          []byte
	InsecureSkipVerify bool
	ServerName         string
}

// String never shows the key.
func (t TLS) String() string {
	return fmt.Sprintf("TLS{ca:%t cert:%t key:%t insecure:%t server:%q}",
		len(t.CA) > 0, len(t.Cert) > 0, len(t.Key) > 0, t.InsecureSkipVerify, t.ServerName)
}

// GoString (%#v) never shows the key either.
func (t TLS) GoString() string { return "kafka." + t.String() }

// String shows where and how the config connects, never a password or a
// private key (fmt's %v, %+v and %s of a Config all come here).
func (c Config) String() string {
	sasl, tls := "none", "none"
	if c.SASL != nil {
		sasl = c.SASL.String()
	}
	switch {
	case c.TLSConfig != nil:
		tls = "TLS{config}"
	case c.TLS != nil:
		tls = c.TLS.String()
	}
	return fmt.Sprintf("kafka.Config{bootstrap:%q sasl:%s tls:%s timeout:%s opts:%d}",
		c.BootstrapServers, sasl, tls, c.RequestTimeout, len(c.ClientOpts))
}

// GoString (%#v) is String: the derived form would print the password.
func (c Config) GoString() string { return c.String() }

// ConfigFromSecret builds a Config from the bootstrap servers and the data
// of a Kubernetes Secret, with the keys documented in the package comment.
// The result is validated; errors name the key, never its value.
func ConfigFromSecret(bootstrap []string, data map[string][]byte) (Config, error) {
	cfg := Config{BootstrapServers: bootstrap}
	str := func(k string) (string, bool) {
		v, ok := data[k]
		return strings.TrimSpace(string(v)), ok
	}
	boolean := func(k string) (bool, bool, error) {
		s, ok := str(k)
		if !ok {
			return false, false, nil
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			return false, true, fmt.Errorf("kafka secret: key %q: not a boolean (want true or false)", k)
		}
		return b, true, nil
	}

	mech, hasMech := str(KeySASLMechanism)
	user, hasUser := str(KeySASLUsername)
	pass, hasPass := data[KeySASLPassword]
	if hasMech || hasUser || hasPass {
		switch {
		case !hasMech:
			return Config{}, fmt.Errorf("kafka secret: key %q is required with %q", KeySASLMechanism, KeySASLUsername)
		case !hasUser || user == "":
			return Config{}, fmt.Errorf("kafka secret: key %q is required with %q", KeySASLUsername, KeySASLMechanism)
		case !hasPass || len(pass) == 0:
			return Config{}, fmt.Errorf("kafka secret: key %q is required with %q", KeySASLPassword, KeySASLMechanism)
		}
		cfg.SASL = &SASL{Mechanism: strings.ToUpper(mech), Username: user, Password: string(pass)}
	}

	var t TLS
	anyTLS := false
	ca, hasCA := data[KeyTLSCA]
	ca2, hasCA2 := data[KeyCA]
	switch {
	case hasCA && hasCA2 && !bytes.Equal(ca, ca2):
		return Config{}, fmt.Errorf("kafka secret: keys %q and %q both given and different", KeyTLSCA, KeyCA)
	case hasCA:
		t.CA, anyTLS = ca, true
	case hasCA2:
		t.CA, anyTLS = ca2, true
	}
	if c, ok := data[KeyTLSCert]; ok {
		t.Cert, anyTLS = c, true
	}
	if k, ok := data[KeyTLSKey]; ok {
		t.Key, anyTLS = k, true
	}
	if s, ok := str(KeyTLSServerName); ok {
		t.ServerName, anyTLS = s, true
	}
	skip, hasSkip, err := boolean(KeyTLSInsecureSkip)
	if err != nil {
		return Config{}, err
	}
	if hasSkip {
		t.InsecureSkipVerify, anyTLS = skip, true
	}
	enabled, hasEnabled, err := boolean(KeyTLSEnabled)
	if err != nil {
		return Config{}, err
	}
	switch {
	case hasEnabled && !enabled && anyTLS:
		return Config{}, fmt.Errorf("kafka secret: key %q is false but other tls keys are set", KeyTLSEnabled)
	case enabled || anyTLS:
		cfg.TLS = &t
	}

	if s, ok := str(KeyRequestTimeout); ok {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return Config{}, fmt.Errorf("kafka secret: key %q: not a positive duration (e.g. 10s)", KeyRequestTimeout)
		}
		cfg.RequestTimeout = d
	}

	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks the config without connecting: bootstrap servers, the
// SASL mechanism, and that the TLS PEM blocks parse. Errors name the field
// (as its Secret key), never a value.
func (c Config) Validate() error {
	if len(c.BootstrapServers) == 0 {
		return errors.New("kafka: no bootstrap servers")
	}
	for i, s := range c.BootstrapServers {
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("kafka: bootstrap server %d is empty", i)
		}
	}
	if c.RequestTimeout < 0 {
		return errors.New("kafka: negative request timeout")
	}
	if c.SASL != nil {
		if _, err := c.SASL.mechanism(); err != nil {
			return err
		}
	}
	if c.TLS != nil && c.TLSConfig == nil {
		if _, err := c.TLS.config(); err != nil {
			return err
		}
	}
	return nil
}

func (s *SASL) mechanism() (sasl.Mechanism, error) {
	if s.Username == "" {
		return nil, fmt.Errorf("kafka: %s: empty username", KeySASLUsername)
	}
	if s.Password == "" {
		return nil, fmt.Errorf("kafka: %s: empty password", KeySASLPassword)
	}
	switch strings.ToUpper(s.Mechanism) {
	case MechanismPlain:
		return plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism(), nil
	case MechanismScramSHA256:
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism(), nil
	case MechanismScramSHA512:
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("kafka: %s: unknown SASL mechanism (want %s, %s or %s)",
		KeySASLMechanism, MechanismPlain, MechanismScramSHA256, MechanismScramSHA512)
}

func (t *TLS) config() (*tls.Config, error) {
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // the user asked for it (tls.insecure-skip-verify)
	}
	if len(t.CA) > 0 {
		pool := x509.NewCertPool()
		if err := addPEMCerts(pool, t.CA); err != nil {
			return nil, fmt.Errorf("kafka: %s: %w", KeyTLSCA, err)
		}
		c.RootCAs = pool
	}
	switch {
	case len(t.Cert) > 0 && len(t.Key) == 0:
		return nil, fmt.Errorf("kafka: %s given without %s", KeyTLSCert, KeyTLSKey)
	case len(t.Key) > 0 && len(t.Cert) == 0:
		return nil, fmt.Errorf("kafka: %s given without %s", KeyTLSKey, KeyTLSCert)
	case len(t.Cert) > 0:
		if err := checkPEM(t.Cert, "CERTIFICATE"); err != nil {
			return nil, fmt.Errorf("kafka: %s: %w", KeyTLSCert, err)
		}
		if err := checkPEM(t.Key, ""); err != nil {
			return nil, fmt.Errorf("kafka: %s: %w", KeyTLSKey, err)
		}
		pair, err := tls.X509KeyPair(t.Cert, t.Key)
		if err != nil {
			// crypto/tls's messages describe the failure, not the key.
			return nil, fmt.Errorf("kafka: %s and %s: not a matching certificate and private key", KeyTLSCert, KeyTLSKey)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// addPEMCerts adds every CERTIFICATE block; anything else is an error.
func addPEMCerts(pool *x509.CertPool, data []byte) error {
	n := 0
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return fmt.Errorf("PEM block %d is not a CERTIFICATE", n+1)
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return fmt.Errorf("PEM block %d is not a valid X.509 certificate", n+1)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return errors.New("no PEM certificate found")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return errors.New("trailing data after the PEM certificates")
	}
	return nil
}

// checkPEM checks that data holds at least one PEM block (of the type, if
// given), without echoing any of it.
func checkPEM(data []byte, typ string) error {
	b, _ := pem.Decode(data)
	if b == nil {
		return errors.New("no PEM block found")
	}
	if typ != "" && b.Type != typ {
		return fmt.Errorf("PEM block is not a %s", typ)
	}
	return nil
}

// kgoOpts turns the config into franz-go options.
func (c Config) kgoOpts() ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	seeds := make([]string, len(c.BootstrapServers))
	for i, s := range c.BootstrapServers {
		seeds[i] = strings.TrimSpace(s)
	}
	opts := []kgo.Opt{kgo.SeedBrokers(seeds...)}
	if c.SASL != nil {
		m, err := c.SASL.mechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	switch {
	case c.TLSConfig != nil:
		opts = append(opts, kgo.DialTLSConfig(c.TLSConfig.Clone()))
	case c.TLS != nil:
		tc, err := c.TLS.config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	return opts, nil
}
