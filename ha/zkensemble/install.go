package zkensemble

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
)

// ErrNotInstalled is wrapped by Start's error when java or ZooKeeper's jar
// is missing, so that a newcomer reads the one command that fixes it.
var ErrNotInstalled = errors.New("install Debian's zookeeper package (`apt-get install zookeeper`)")

// Where Debian puts things. Variables only so that a test can prove the
// message a machine without ZooKeeper gets.
var (
	javaCommand = "java"
	// The jar's manifest Class-Path names every library the server needs,
	// so the jar alone is a complete server classpath.
	zooKeeperJar = "/usr/share/java/zookeeper.jar"
	// The manifest names slf4j-api but no binding, so without one the
	// server logs nothing at all (slf4j's NOP logger) and a member that
	// fails to start cannot say why. slf4j-simple writes to stderr, which
	// goes to the member's log file; Debian's libzookeeper-java depends on
	// the package that ships it.
	slf4jSimpleJar = "/usr/share/java/slf4j-simple.jar"
)

// install is what a member's command line needs.
type install struct {
	java      string
	classpath string
}

func findInstall() (install, error) {
	java, err := exec.LookPath(javaCommand)
	if err != nil {
		return install{}, fmt.Errorf("zkensemble: no %s on PATH: %w", javaCommand, ErrNotInstalled)
	}
	if _, err := os.Stat(zooKeeperJar); err != nil {
		return install{}, fmt.Errorf("zkensemble: no %s: %w", zooKeeperJar, ErrNotInstalled)
	}
	cp := zooKeeperJar
	if _, err := os.Stat(slf4jSimpleJar); err == nil {
		cp += ":" + slf4jSimpleJar
	}
	return install{java: java, classpath: cp}, nil
}
