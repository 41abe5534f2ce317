package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// floorCmd serves the benchmark floor: a bare net/http handler that decodes a
// verify request and answers a fixed verdict, with no auth, store or logging.
// The bench tool runs it as a child of itself ("bench floor"), a process of
// its own like keymint serve, built by the same Go with the same net/http, so
// `make bench` can report keymint's verify throughput as a share of it.
func floorCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	addrFile := fs.String("addr-file", "", "write the bound address here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	verdict, _ := json.Marshal(wire.VerifyResponse{Valid: true, Code: wire.CodeValid, KeyID: "key_floor", App: "floor", Scopes: []string{"read:data"}})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/verify", func(w http.ResponseWriter, r *http.Request) {
		var req wire.VerifyRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(verdict)
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(ln.Addr().String()), 0o600); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	hs := &http.Server{Handler: mux}
	go func() { <-ctx.Done(); _ = hs.Shutdown(context.Background()) }()
	if err := hs.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
