package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a server process started for a benchmark.
type proc struct {
	cmd  *exec.Cmd
	addr string
}

// startServer runs bin with args plus --addr 127.0.0.1:0 --addr-file, and waits until it listens.
func startServer(dir, bin string, env []string, args ...string) (*proc, error) {
	addrFile := filepath.Join(dir, fmt.Sprintf("addr-%d", time.Now().UnixNano()))
	logFile, err := os.Create(addrFile + ".log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append(args, "--addr", "127.0.0.1:0", "--addr-file", addrFile)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// Fine-grained: make bench-scale times the start-up.
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			return &proc{cmd: cmd, addr: string(b)}, nil
		}
		time.Sleep(2 * time.Millisecond) // polling a child's start-up: no clock to inject
	}
	cmd.Process.Kill()
	return nil, fmt.Errorf("%s did not start listening (log: %s.log)", bin, addrFile)
}

func (p *proc) url() string { return "http://" + p.addr }

// stop ends the server; its exit status does not matter to a benchmark.
func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
}

// memory returns the process's resident set size now and at its peak, in bytes.
func (p *proc) memory() (rss, peak int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, _ := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(value)
		if len(fields) == 0 {
			continue
		}
		kb, _ := strconv.ParseInt(fields[0], 10, 64)
		switch name {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			peak = kb << 10
		}
	}
	return rss, peak, sc.Err()
}

// cpu is the CPU time (user and system) the process has used so far.
func (p *proc) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses: utime and stime
	// are the 12th and 13th, in clock ticks (100 a second on Linux).
	_, rest, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", p.cmd.Process.Pid, b)
	}
	user, err1 := strconv.ParseInt(f[11], 10, 64)
	sys, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", p.cmd.Process.Pid, b)
	}
	return time.Duration(user+sys) * 10 * time.Millisecond, nil
}
