package kafka

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testPEM makes a self-signed certificate and its key, PEM-encoded.
func testPEM(t testing.TB) (cert, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	kd, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

const secretPW = "hunter2-very-secret"

func TestConfigFromSecret(t *testing.T) {
	cert, key := testPEM(t)
	cert2, key2 := testPEM(t)
	boot := []string{"kafka:9092"}
	sasl := func(mech string) map[string][]byte {
		return map[string][]byte{"sasl.mechanism": []byte(mech), "sasl.username": []byte("u"), "sasl.password": []byte(secretPW)}
	}
	with := func(m map[string][]byte, kv ...string) map[string][]byte {
		out := map[string][]byte{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = []byte(kv[i+1])
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		boot    []string
		data    map[string][]byte
		want    Config
		wantErr string // substring; "" means success
	}{
		{name: "empty", data: nil, want: Config{BootstrapServers: boot}},
		{name: "unrelated keys ignored", data: map[string][]byte{"bootstrap.servers": []byte("x"), "foo": []byte(secretPW)}, want: Config{BootstrapServers: boot}},
		{name: "plain", data: sasl("PLAIN"), want: Config{BootstrapServers: boot, SASL: &SASL{"PLAIN", "u", secretPW}}},
		{name: "scram-256 lower case, spaces", data: with(sasl(" scram-sha-256\n"), "sasl.username", " u\n"), want: Config{BootstrapServers: boot, SASL: &SASL{"SCRAM-SHA-256", "u", secretPW}}},
		{name: "scram-512", data: sasl("SCRAM-SHA-512"), want: Config{BootstrapServers: boot, SASL: &SASL{"SCRAM-SHA-512", "u", secretPW}}},
		{name: "unknown mechanism", data: sasl("GSSAPI"), wantErr: "sasl.mechanism: unknown SASL mechanism"},
		{name: "mechanism without user", data: map[string][]byte{"sasl.mechanism": []byte("PLAIN"), "sasl.password": []byte(secretPW)}, wantErr: `"sasl.username" is required`},
		{name: "mechanism without password", data: map[string][]byte{"sasl.mechanism": []byte("PLAIN"), "sasl.username": []byte("u")}, wantErr: `"sasl.password" is required`},
		{name: "empty password", data: with(sasl("PLAIN"), "sasl.password", ""), wantErr: `"sasl.password" is required`},
		{name: "user without mechanism", data: map[string][]byte{"sasl.username": []byte("u"), "sasl.password": []byte(secretPW)}, wantErr: `"sasl.mechanism" is required`},
		{name: "tls enabled", data: map[string][]byte{"tls.enabled": []byte("true")}, want: Config{BootstrapServers: boot, TLS: &TLS{}}},
		{name: "tls disabled", data: map[string][]byte{"tls.enabled": []byte("false")}, want: Config{BootstrapServers: boot}},
		{name: "tls disabled with ca", data: map[string][]byte{"tls.enabled": []byte("false"), "ca.crt": cert}, wantErr: `"tls.enabled" is false`},
		{name: "tls enabled not bool", data: map[string][]byte{"tls.enabled": []byte("yes please")}, wantErr: `"tls.enabled": not a boolean`},
		{name: "ca.crt", data: map[string][]byte{"ca.crt": cert}, want: Config{BootstrapServers: boot, TLS: &TLS{CA: cert}}},
		{name: "tls.ca.crt", data: map[string][]byte{"tls.ca.crt": cert}, want: Config{BootstrapServers: boot, TLS: &TLS{CA: cert}}},
		{name: "both CAs equal", data: map[string][]byte{"tls.ca.crt": cert, "ca.crt": cert}, want: Config{BootstrapServers: boot, TLS: &TLS{CA: cert}}},
		{name: "both CAs differ", data: map[string][]byte{"tls.ca.crt": cert, "ca.crt": cert2}, wantErr: `"tls.ca.crt" and "ca.crt" both given`},
		{name: "two CAs in one", data: map[string][]byte{"ca.crt": append(append([]byte{}, cert...), cert2...)}, want: Config{BootstrapServers: boot, TLS: &TLS{CA: append(append([]byte{}, cert...), cert2...)}}},
		{name: "bad CA PEM", data: map[string][]byte{"ca.crt": []byte("not a pem " + secretPW)}, wantErr: "tls.ca.crt: no PEM certificate found"},
		{name: "CA is a key", data: map[string][]byte{"ca.crt": key}, wantErr: "tls.ca.crt: PEM block 1 is not a CERTIFICATE"},
		{name: "CA trailing junk", data: map[string][]byte{"ca.crt": append(append([]byte{}, cert...), "junk"...)}, wantErr: "tls.ca.crt: trailing data"},
		{name: "CA bad DER", data: map[string][]byte{"ca.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte(secretPW)})}, wantErr: "not a valid X.509 certificate"},
		{name: "mTLS", data: map[string][]byte{"tls.crt": cert, "tls.key": key, "tls.server-name": []byte("kafka.local")}, want: Config{BootstrapServers: boot, TLS: &TLS{Cert: cert, Key: key, ServerName: "kafka.local"}}},
		{name: "cert without key", data: map[string][]byte{"tls.crt": cert}, wantErr: "tls.crt given without tls.key"},
		{name: "key without cert", data: map[string][]byte{"tls.key": key}, wantErr: "tls.key given without tls.crt"},
		{name: "mismatched pair", data: map[string][]byte{"tls.crt": cert, "tls.key": key2}, wantErr: "tls.crt and tls.key: not a matching"},
		{name: "key not PEM", data: map[string][]byte{"tls.crt": cert, "tls.key": []byte(secretPW)}, wantErr: "tls.key: no PEM block"},
		{name: "cert not PEM", data: map[string][]byte{"tls.crt": []byte(secretPW), "tls.key": key}, wantErr: "tls.crt: no PEM block"},
		{name: "insecure", data: map[string][]byte{"tls.insecure-skip-verify": []byte("true")}, want: Config{BootstrapServers: boot, TLS: &TLS{InsecureSkipVerify: true}}},
		{name: "insecure not bool", data: map[string][]byte{"tls.insecure-skip-verify": []byte(secretPW)}, wantErr: `"tls.insecure-skip-verify": not a boolean`},
		{name: "timeout", data: map[string][]byte{"request.timeout": []byte("5s")}, want: Config{BootstrapServers: boot, RequestTimeout: 5 * time.Second}},
		{name: "bad timeout", data: map[string][]byte{"request.timeout": []byte("-5s")}, wantErr: `"request.timeout": not a positive duration`},
		{name: "no bootstrap", boot: []string{}, data: nil, wantErr: "no bootstrap servers"},
		{name: "empty bootstrap", boot: []string{"a:1", " "}, data: nil, wantErr: "bootstrap server 1 is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := boot
			if tc.boot != nil {
				b = tc.boot
			}
			got, err := ConfigFromSecret(b, tc.data)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.NotContains(t, err.Error(), secretPW)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			c, err := New(got)
			require.NoError(t, err)
			c.Close()
		})
	}
}

func TestConfigStringsHideSecrets(t *testing.T) {
	s := SASL{Mechanism: "PLAIN", Username: "u", Password: secretPW}
	assert.NotContains(t, s.String(), secretPW)
	tl := TLS{Key: []byte(secretPW)}
	assert.NotContains(t, tl.String(), secretPW)
}

func FuzzConfigFromSecret(f *testing.F) {
	cert, key := testPEM(f)
	f.Add("PLAIN", "u", secretPW, []byte(nil), []byte(nil), []byte(nil), "", "")
	f.Add("SCRAM-SHA-256", "u", "p4ssword", cert, []byte(nil), []byte(nil), "true", "3s")
	f.Add("", "", "", cert, cert, key, "false", "")
	f.Add("x", "p4ssword", "p4ssword", []byte("p4ssword"), []byte("-----BEGIN p4ssword-----\n-----END p4ssword-----\n"), key, "p4ssword", "p4ssword")
	f.Fuzz(func(t *testing.T, mech, user, pass string, ca, crt, k []byte, insecure, timeout string) {
		data := map[string][]byte{}
		set := func(key, v string) {
			if v != "" {
				data[key] = []byte(v)
			}
		}
		set("sasl.mechanism", mech)
		set("sasl.username", user)
		set("sasl.password", pass)
		set("tls.insecure-skip-verify", insecure)
		set("request.timeout", timeout)
		if ca != nil {
			data["ca.crt"] = ca
		}
		if crt != nil {
			data["tls.crt"] = crt
		}
		if k != nil {
			data["tls.key"] = k
		}
		cfg, err := ConfigFromSecret([]string{"127.0.0.1:9092"}, data)
		if err != nil {
			// Errors never echo the password (short ones may occur in
			// the fixed message text by chance).
			if len(pass) >= 8 {
				require.NotContains(t, err.Error(), pass)
			}
			if len(k) >= 8 {
				require.NotContains(t, err.Error(), string(k))
			}
			return
		}
		if cfg.SASL != nil {
			require.Equal(t, pass, cfg.SASL.Password)
			require.NotContains(t, cfg.SASL.String(), pass)
		}
		_, err = cfg.kgoOpts()
		require.NoError(t, err, "a config ConfigFromSecret accepted must build")
	})
}
