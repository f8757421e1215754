package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// nasctl ui prints the address to open and serves the runs there until it
// is interrupted; a search names the command when it starts.
func TestUI(t *testing.T) {
	runs := t.TempDir()
	if code, _, errOut := runCLI(t, "search", "nasnet", "--reward", "mock", "--episodes", "4", "--controller-batch", "2", "--dir", runs, "--name", "m"); code != 0 ||
		!strings.Contains(errOut, "nasctl ui --runs "+runs+", then open http://127.0.0.1:8080/runs/m") {
		t.Fatalf("search: exit %d, stderr:\n%s", code, errOut)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runUI(ctx, uiOptions{Runs: runs, Addr: "127.0.0.1:0"}, pw)
		pw.Close()
	}()
	first, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(pr); rest <- string(b) }()
	addr := regexp.MustCompile(`open (http://127\.0\.0\.1:\d+/)\n`).FindStringSubmatch(first)
	if addr == nil {
		t.Fatalf("first line %q names no loopback address", first)
	}
	resp, err := http.Get(addr[1] + "api/runs")
	if err != nil {
		t.Fatal(err)
	}
	var list []struct {
		Name   string `json:"name"`
		Trials int    `json:"trials"`
		Status string `json:"status"`
	}
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list) != 1 || list[0].Name != "m" || list[0].Trials != 4 || list[0].Status != "finished" {
		t.Errorf("runs served: %+v", list)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after the interrupt: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the dashboard did not stop after its context ended")
	}
	if out := <-rest; !strings.HasSuffix(out, "dashboard stopped\n") {
		t.Errorf("no word of the stop:\n%s", out)
	}
	if code, _, errOut := runCLI(t, "ui", filepath.Join(runs, "m")); code != 2 || !strings.Contains(errOut, "--runs") {
		t.Errorf("ui with an argument: exit %d, %s", code, errOut)
	}
	file := filepath.Join(t.TempDir(), "runs.txt")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "ui", "--runs", file); code != 2 || !strings.Contains(errOut, "--runs "+file+" is a file") {
		t.Errorf("ui --runs FILE: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "ui", "--dir", file); code != 2 || !strings.Contains(errOut, "--runs "+file+" is a file") {
		t.Errorf("ui --dir FILE (--runs by its other name): exit %d, %q", code, errOut)
	}
	for addr, want := range map[string]string{"nohost": "give host:port", "127.0.0.1:99999": `bad port "99999"`} {
		if code, _, errOut := runCLI(t, "ui", "--runs", runs, "--addr", addr); code != 2 || !strings.Contains(errOut, want) {
			t.Errorf("ui --addr %s: exit %d, %q; want a usage error with %q", addr, code, errOut, want)
		}
	}
	// An address taken: the error says so and offers the next port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	want := fmt.Sprintf("another nasctl ui?) listens on 127.0.0.1:%d; give another address, such as --addr 127.0.0.1:%d", port, port+1)
	if code, _, errOut := runCLI(t, "ui", "--runs", runs, "--addr", ln.Addr().String()); code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("ui on a taken address: exit %d, %q", code, errOut)
	}
}

// A token from $NASCTL_UI_TOKEN (out of ps) is required on loopback too:
// on a shared machine every user can reach loopback.
func TestUITokenFromEnvironment(t *testing.T) {
	bin := buildNasctl(t)
	runs := t.TempDir()
	cmd := exec.Command(bin, "ui", "--runs", runs, "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "NASCTL_UI_TOKEN=s3cret-token")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	first, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr := regexp.MustCompile(`open (http://127\.0\.0\.1:\d+/)\?token=s3cret-token\n`).FindStringSubmatch(first)
	if addr == nil {
		t.Fatalf("first line %q names no address with the token", first)
	}
	for token, want := range map[string]int{"": http.StatusUnauthorized, "wrong": http.StatusUnauthorized, "s3cret-token": http.StatusOK} {
		req, _ := http.NewRequest("GET", addr[1]+"api/runs", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("token %q: status %d, want %d", token, resp.StatusCode, want)
		}
	}
}
