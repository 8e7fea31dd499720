// Package redistest starts real redis-server processes on free loopback
// ports for tests: a standalone server, or a Cluster of masters. Tests
// that need them are skipped when redis-server is not installed.
package redistest

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is one redis-server process.
type Server struct {
	Port int
	Addr string // 127.0.0.1:Port
	args []string
	dir  string
	cmd  *exec.Cmd
	exit chan struct{}
	tb   testing.TB
}

// StartServer starts a standalone redis-server, without persistence, and
// stops it when the test ends.
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	return start(tb, tb.TempDir(), freePort(tb, false), nil)
}

// StartCluster starts n redis-server masters (n >= 3), joins them in a
// Cluster with no replicas, waits for cluster_state:ok and returns their
// addresses. The servers stop when the test ends.
func StartCluster(tb testing.TB, n int) []*Server {
	tb.Helper()
	cli := lookPath(tb, "redis-cli")
	var nodes []*Server
	args := []string{"--cluster", "create"}
	for i := range n {
		dir := filepath.Join(tb.TempDir(), strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		s := start(tb, dir, freePort(tb, true), []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", "2000",
		})
		nodes = append(nodes, s)
		args = append(args, s.Addr)
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range nodes {
		for {
			out, err := exec.Command(cli, "-p", strconv.Itoa(s.Port), "cluster", "info").Output()
			if err == nil && strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("cluster node %s: no cluster_state:ok after 20s:\n%s", s.Addr, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nodes
}

// Addrs returns the servers' addresses.
func Addrs(servers []*Server) []string {
	var out []string
	for _, s := range servers {
		out = append(out, s.Addr)
	}
	return out
}

func lookPath(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		tb.Skipf("%s not installed: %v", name, err)
	}
	return p
}

func start(tb testing.TB, dir string, port int, extra []string) *Server {
	tb.Helper()
	s := &Server{dir: dir, tb: tb}
	// Another process (a parallel test binary) can take the port between
	// freePort's check and redis-server's bind: then ours exits, and a
	// fresh port is tried.
	for attempt := 0; ; attempt++ {
		s.Port = port
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.args = append([]string{
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir,
			"--protected-mode", "no", "--loglevel", "warning",
		}, extra...)
		out, ok := s.start()
		if ok {
			break
		}
		if attempt == 4 {
			tb.Fatalf("redis-server on %s exited:\n%s", s.Addr, out)
		}
		port = freePort(tb, slicesContain(extra, "--cluster-enabled"))
	}
	tb.Cleanup(s.Kill)
	return s
}

func slicesContain(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Start starts the server (again, after Kill) on its port and waits until
// it answers PING.
func (s *Server) Start() {
	s.tb.Helper()
	if out, ok := s.start(); !ok {
		s.tb.Fatalf("redis-server on %s exited:\n%s", s.Addr, out)
	}
}

// start starts the server and waits until it, and not some other server
// on the same port, answers; ok=false with its log when it exited.
func (s *Server) start() (log []byte, ok bool) {
	s.tb.Helper()
	bin := lookPath(s.tb, "redis-server")
	s.cmd = exec.Command(bin, s.args...)
	s.cmd.Dir = s.dir
	logf, err := os.Create(filepath.Join(s.dir, fmt.Sprintf("redis-%d.log", time.Now().UnixNano())))
	if err != nil {
		s.tb.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("redis-server: %v", err)
	}
	exit := make(chan struct{})
	s.exit = exit
	go func() { _ = s.cmd.Wait(); logf.Close(); close(exit) }()
	pid := s.cmd.Process.Pid
	deadline := time.Now().Add(10 * time.Second)
	for !answers(s.Addr, pid) {
		select {
		case <-exit:
			out, _ := os.ReadFile(logf.Name())
			s.cmd = nil
			return out, false
		default:
		}
		if time.Now().After(deadline) {
			s.Kill()
			s.tb.Fatalf("redis-server on %s: no answer after 10s", s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, true
}

// Kill stops the server at once (SIGKILL) and waits for it to exit.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exit
	s.cmd = nil
}

// answers reports whether the Redis server at addr is process pid: a
// server of another test process that took the port must not pass for
// ours.
func answers(addr string, pid int) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("INFO server\r\n")); err != nil {
		return false
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n') // $<length>
	if err != nil || !strings.HasPrefix(head, "$") {
		return false
	}
	want := "process_id:" + strconv.Itoa(pid)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return false
		}
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "process_id:") {
			return line == want
		}
	}
}

// freePort returns a loopback port nobody listens on; for a Cluster node
// the bus port (port+10000) must be free too.
func freePort(tb testing.TB, cluster bool) int {
	tb.Helper()
	for range 200 {
		port := 20000 + rand.IntN(30000)
		if !free(port) || (cluster && !free(port+10000)) {
			continue
		}
		return port
	}
	tb.Fatal("no free loopback port")
	return 0
}

func free(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
