package testbed

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// EnvCI, when "true", turns a missing java or mvn into a test failure
// instead of a skip, as in the rest of the project's tests.
const EnvCI = "CI"

// javaOpens are the module options Flink's start scripts pass to a Java 17+
// JVM (env.java.default-opts.all of Flink's config.yaml, less the
// jdk.compiler exports that only the Table planner needs). Kafka does not
// need them and does not get them.
var javaOpens = []string{
	"--add-exports=java.base/sun.net.util=ALL-UNNAMED",
	"--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
	"--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
	"--add-opens=java.base/java.lang=ALL-UNNAMED",
	"--add-opens=java.base/java.net=ALL-UNNAMED",
	"--add-opens=java.base/java.io=ALL-UNNAMED",
	"--add-opens=java.base/java.nio=ALL-UNNAMED",
	"--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
	"--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
	"--add-opens=java.base/java.text=ALL-UNNAMED",
	"--add-opens=java.base/java.time=ALL-UNNAMED",
	"--add-opens=java.base/java.util=ALL-UNNAMED",
	"--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
	"--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
	"--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED",
}

// log4jConfig is the log4j2 configuration of every testbed JVM: INFO to the
// file named by the system property log.file (one per process; Flink's web
// UI lists the files of that directory), no rolling.
const log4jConfig = `# Written by flinkscale's testbed (test/testbed): one log file per process,
# named by -Dlog.file.
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FileAppender
appender.file.name = FileAppender
appender.file.type = File
appender.file.fileName = ${sys:log.file}
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{yyyy-MM-dd HH:mm:ss,SSS} %-5p %-60c %x - %m%n
# As Flink's own log4j.properties: a harmless warning on every shutdown.
logger.netty.name = org.jboss.netty.channel.DefaultChannelPipeline
logger.netty.level = OFF
# Kafka's per-request and state-change chatter.
logger.kafkarequest.name = kafka.request.logger
logger.kafkarequest.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
`

// log4jArgs are the system properties that send a JVM's log to logFile.
func log4jArgs(configFile, logFile string) []string {
	return []string{"-Dlog4j.configurationFile=" + configFile, "-Dlog.file=" + logFile}
}

// JavaPath is the java binary the testbed runs: $JAVA_HOME/bin/java when
// JAVA_HOME is set, else java on the PATH.
func JavaPath() (string, error) {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		p := filepath.Join(home, "bin", "java")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("java")
	if err != nil {
		return "", errors.New("java is not on the PATH (the testbed needs a JDK 17 or newer; Debian: apt-get install openjdk-17-jdk-headless)")
	}
	return p, nil
}

// Available reports whether this machine can run the testbed: a java (see
// JavaPath) and Maven's mvn on the PATH. The jars themselves come from
// Maven's repository on first use.
func Available() error {
	var errs []error
	if _, err := JavaPath(); err != nil {
		errs = append(errs, err)
	}
	if _, err := exec.LookPath("mvn"); err != nil {
		errs = append(errs, errMavenMissing)
	}
	return errors.Join(errs...)
}

// SkipUnlessAvailable skips t when Available fails, unless CI=true: then it
// fails, so CI never passes by silently skipping the real-cluster tests.
func SkipUnlessAvailable(t testing.TB) {
	t.Helper()
	err := Available()
	if err == nil {
		return
	}
	if os.Getenv(EnvCI) == "true" {
		t.Fatalf("the real-Flink testbed cannot run here and CI=true: %v", err)
	}
	t.Skipf("skipping the real-Flink testbed: %v", err)
}

// EnvReal, when "1", enables the tests that start real Flink and Kafka
// (make test sets it for one separate step, so they do not compete for the
// 2 cores with the rest of `go test ./...`).
const EnvReal = "FLINKSCALE_REAL"

// RequireReal skips t unless EnvReal is "1", then applies
// SkipUnlessAvailable.
func RequireReal(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvReal) != "1" {
		t.Skipf("real Flink and Kafka: set %s=1 (make test does)", EnvReal)
	}
	if testing.Short() {
		t.Skip("real Flink and Kafka: not in -short")
	}
	SkipUnlessAvailable(t)
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now. The
// process it is meant for binds it a moment later; another process could
// take it in between, which makes that process fail to start with a clear
// "Address already in use" in its log.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// hostPort is 127.0.0.1:port.
func hostPort(port int) string { return net.JoinHostPort(loopback, strconv.Itoa(port)) }

const loopback = "127.0.0.1"
