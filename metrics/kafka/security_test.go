package kafka

import (
	"crypto/tls"
	"encoding/pem"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/test/sim"
	simkafka "github.com/flinkscale/flinkscale/test/sim/kafka"
)

var oneTopic = []sim.TopicSpec{{Name: "t", Partitions: 2}}

func produceAndCommit(t *testing.T, b *simkafka.Broker) {
	t.Helper()
	ctx := testCtx(t)
	_, err := b.Produce(ctx, map[sim.TopicPartition]int64{tp("t", 0): 10, tp("t", 1): 20})
	require.NoError(t, err)
	require.NoError(t, b.Commit(ctx, "g", map[sim.TopicPartition]int64{tp("t", 0): 4}))
}

func assertCollected(t *testing.T, c *Collector) {
	t.Helper()
	s, err := c.Collect(testCtx(t), "g", []string{"t"})
	require.NoError(t, err)
	require.Len(t, s.Partitions, 2)
	assert.Equal(t, int64(10), s.Partitions[0].End)
	assert.Equal(t, int64(4), s.Partitions[0].Committed)
	assert.Equal(t, int64(20), s.Partitions[1].End)
	assert.Equal(t, int64(-1), s.Partitions[1].Committed)
}

func TestSASL(t *testing.T) {
	for _, mech := range []string{simkafka.SASLPlain, simkafka.SASLScramSHA256, simkafka.SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			b := startBroker(t, oneTopic, simkafka.WithSASL(mech, "flinkscale", "s3cret-pw"))
			produceAndCommit(t, b)
			cfg, err := ConfigFromSecret(b.Addrs(), map[string][]byte{
				"sasl.mechanism": []byte(mech),
				"sasl.username":  []byte("flinkscale"),
				"sasl.password":  []byte("s3cret-pw"),
			})
			require.NoError(t, err)
			assertCollected(t, newCollector(t, cfg))

			cfg.SASL.Password = "wrong-pw"
			cfg.RequestTimeout = 3 * time.Second
			start := time.Now()
			_, err = newCollector(t, cfg).Collect(testCtx(t), "g", []string{"t"})
			require.Error(t, err)
			t.Log(err)
			assert.Less(t, time.Since(start), 4*time.Second)
			assert.ErrorContains(t, err, "SASL authentication failed")
			assert.NotContains(t, err.Error(), "wrong-pw")
		})
	}
	t.Run("no credentials", func(t *testing.T) {
		b := startBroker(t, oneTopic, simkafka.WithSASL(simkafka.SASLPlain, "u", "p"))
		_, err := newCollector(t, Config{BootstrapServers: b.Addrs(), RequestTimeout: 2 * time.Second}).Collect(testCtx(t), "g", []string{"t"})
		require.Error(t, err)
		t.Log(err)
	})
	t.Run("wrong mechanism", func(t *testing.T) {
		b := startBroker(t, oneTopic, simkafka.WithSASL(simkafka.SASLScramSHA256, "u", "p"))
		cfg := Config{BootstrapServers: b.Addrs(), RequestTimeout: 2 * time.Second, SASL: &SASL{Mechanism: "PLAIN", Username: "u", Password: "p"}}
		_, err := newCollector(t, cfg).Collect(testCtx(t), "g", []string{"t"})
		require.Error(t, err)
		t.Log(err)
		assert.ErrorContains(t, err, "SASL")
	})
}

// brokerCAPEM reads the brokers' self-signed certificate off a handshake
// (test/sim/kafka exposes only a *tls.Config trusting it, not the PEM).
func brokerCAPEM(t *testing.T, b *simkafka.Broker) []byte {
	t.Helper()
	conn, err := tls.Dial("tcp", b.Addrs()[0], &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reading the certificate to trust
	require.NoError(t, err)
	defer conn.Close()
	certs := conn.ConnectionState().PeerCertificates
	require.NotEmpty(t, certs)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certs[0].Raw})
}

func TestTLS(t *testing.T) {
	b := startBroker(t, oneTopic, simkafka.WithTLS())
	produceAndCommit(t, b)

	t.Run("TLSConfig", func(t *testing.T) {
		assertCollected(t, newCollector(t, Config{BootstrapServers: b.Addrs(), TLSConfig: b.TLSConfig()}))
	})
	t.Run("secret ca.crt", func(t *testing.T) {
		cfg, err := ConfigFromSecret(b.Addrs(), map[string][]byte{"ca.crt": brokerCAPEM(t, b)})
		require.NoError(t, err)
		assertCollected(t, newCollector(t, cfg))
	})
	t.Run("insecure", func(t *testing.T) {
		cfg, err := ConfigFromSecret(b.Addrs(), map[string][]byte{"tls.insecure-skip-verify": []byte("true")})
		require.NoError(t, err)
		assertCollected(t, newCollector(t, cfg))
	})
	t.Run("untrusted", func(t *testing.T) {
		cfg, err := ConfigFromSecret(b.Addrs(), map[string][]byte{"tls.enabled": []byte("true"), "request.timeout": []byte("2s")})
		require.NoError(t, err)
		_, err = newCollector(t, cfg).Collect(testCtx(t), "g", []string{"t"})
		require.Error(t, err)
		t.Log(err)
		assert.ErrorContains(t, err, "TLS")
	})
	t.Run("plaintext to TLS", func(t *testing.T) {
		_, err := newCollector(t, Config{BootstrapServers: b.Addrs(), RequestTimeout: 2 * time.Second}).Collect(testCtx(t), "g", []string{"t"})
		require.Error(t, err)
		t.Log(err)
		assert.ErrorContains(t, err, "TLS")
	})
	t.Run("TLS to plaintext", func(t *testing.T) {
		plain := startBroker(t, oneTopic)
		cfg := Config{BootstrapServers: plain.Addrs(), RequestTimeout: 2 * time.Second, TLS: &TLS{InsecureSkipVerify: true}}
		_, err := newCollector(t, cfg).Collect(testCtx(t), "g", []string{"t"})
		require.Error(t, err)
		t.Log(err)
		assert.ErrorContains(t, err, "TLS")
	})
}

func TestSASLOverTLS(t *testing.T) {
	b := startBroker(t, oneTopic, simkafka.WithTLS(), simkafka.WithSASL(simkafka.SASLScramSHA256, "u", "pw"))
	produceAndCommit(t, b)
	cfg, err := ConfigFromSecret(b.Addrs(), map[string][]byte{
		"sasl.mechanism": []byte("scram-sha-256"), "sasl.username": []byte("u"), "sasl.password": []byte("pw"),
		"tls.ca.crt": brokerCAPEM(t, b),
	})
	require.NoError(t, err)
	assertCollected(t, newCollector(t, cfg))
}
