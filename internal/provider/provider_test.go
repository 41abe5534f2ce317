package provider

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/keymint/terraform-provider-keymint/internal/api"
	"github.com/keymint/terraform-provider-keymint/internal/clock"
	"github.com/keymint/terraform-provider-keymint/internal/keyformat"
	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/store/sqlite"
	"github.com/keymint/terraform-provider-keymint/internal/tfmirror"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
	"github.com/keymint/terraform-provider-keymint/keymint"
)

var protoV6Providers = map[string]func() (tfprotov6.ProviderServer, error){
	"keymint": providerserver.NewProtocol6WithError(New("test")()),
}

// timeProvider is hashicorp/time, installed by terraform init from the local mirror.
var timeProvider = map[string]resource.ExternalProvider{
	"time": {Source: "hashicorp/time", VersionConstraint: tfmirror.TimeVersion},
}

// TestMain prepares acceptance tests (TF_ACC=1): the terraform on PATH (or
// TF_ACC_TERRAFORM_PATH), never a download, and hashicorp/time from a local
// filesystem mirror built here. Without terraform it fails loudly.
func TestMain(m *testing.M) {
	if os.Getenv("TF_ACC") != "" {
		if err := setupAcceptance(); err != nil {
			fmt.Fprintln(os.Stderr, "acceptance test setup failed:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

func setupAcceptance() error {
	tf := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if tf == "" {
		var err error
		if tf, err = exec.LookPath("terraform"); err != nil {
			return fmt.Errorf("terraform is not on PATH and TF_ACC_TERRAFORM_PATH is unset; install Terraform >= 1.10 (acceptance tests never download it)")
		}
	}
	if _, err := os.Stat(tf); err != nil {
		return fmt.Errorf("TF_ACC_TERRAFORM_PATH=%s: %w", tf, err)
	}
	os.Setenv("TF_ACC_TERRAFORM_PATH", tf)
	os.Setenv("CHECKPOINT_DISABLE", "1")
	// This provider, built as a binary, for the tests that need Terraform to
	// run it as its own process per provider configuration (aliases):
	// in-process providers share one server between configurations.
	bin, err := os.MkdirTemp("", "keymint-acc-provider")
	if err != nil {
		return err
	}
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "terraform-provider-keymint"), "../..")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the provider binary: %w\n%s", err, out)
	}
	defer os.RemoveAll(bin)
	rc, err := tfmirror.Setup(filepath.Join("..", "..", ".tfmirror"), os.Stderr,
		tfmirror.Provider{Source: "keymint/keymint", Version: builtProviderVersion, Binary: filepath.Join(bin, "terraform-provider-keymint")})
	if err != nil {
		return err
	}
	return os.Setenv("TF_CLI_CONFIG_FILE", rc)
}

// builtProviderVersion is the version the mirror files this provider under.
const builtProviderVersion = "0.0.1"

// builtProvider is this provider from the mirror, run by Terraform as a process.
var builtProvider = map[string]resource.ExternalProvider{
	"keymint": {Source: "keymint/keymint", VersionConstraint: builtProviderVersion},
}

// testServer is a real keymint server in this process, on a temp SQLite file,
// with an injected clock and a log of the requests it served, in order.
type testServer struct {
	URL    string
	Token  string
	Clock  *clock.Fake
	Client *keymint.Client

	mu       sync.Mutex
	requests []string
	secrets  []string // every secret the test saw in state
}

const testRootToken = "acc-root-token"

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	// As keymint serve runs SQLite: with the verify cache.
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keymint.db"), sqlite.Options{CacheSize: 100000})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Token: testRootToken, Clock: clock.NewFake(time.Now().UTC())} // sub-second, as a real server's times are
	svc := service.New(service.Config{Store: st, RootTokenHash: keyformat.Hash(testRootToken), Now: ts.Clock.Now})
	if err := svc.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := api.New(svc, nil, nil)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.ServeHTTP(w, r)
		ts.mu.Lock()
		ts.requests = append(ts.requests, r.Method+" "+r.URL.Path)
		ts.mu.Unlock()
	}))
	t.Cleanup(func() { hs.Close(); st.Close() })
	ts.URL = hs.URL
	if ts.Client, err = keymint.New(hs.URL, testRootToken); err != nil {
		t.Fatal(err)
	}
	return ts
}

// config prefixes HCL with a provider block for this server.
func (ts *testServer) config(hcl string, args ...any) string {
	return fmt.Sprintf("provider \"keymint\" {\n  endpoint = %q\n  token = %q\n}\n", ts.URL, ts.Token) + fmt.Sprintf(hcl, args...)
}

// requestIndex is the position of the first served request with this prefix after from, or -1.
func (ts *testServer) requestIndex(prefix string, from int) int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for i := from; i < len(ts.requests); i++ {
		if strings.HasPrefix(ts.requests[i], prefix) {
			return i
		}
	}
	return -1
}

func attr(s *terraform.State, addr, name string) (string, error) {
	rs, ok := s.RootModule().Resources[addr]
	if !ok {
		return "", fmt.Errorf("%s not in state", addr)
	}
	return rs.Primary.Attributes[name], nil
}

// verifies checks that the secret in addr's state verifies on the server with code want.
func (ts *testServer) verifies(addr, want string, scopes ...string) func(*terraform.State) error {
	return func(s *terraform.State) error {
		secret, err := attr(s, addr, "secret")
		if err != nil {
			return err
		}
		if secret == "" {
			return fmt.Errorf("%s has an empty secret in state", addr)
		}
		ts.remember(secret)
		return ts.wantCode(secret, want, scopes...)
	}
}

// remember records a secret for checkDestroy.
func (ts *testServer) remember(secret string) {
	ts.mu.Lock()
	ts.secrets = append(ts.secrets, secret)
	ts.mu.Unlock()
}

func (ts *testServer) wantCode(secret, want string, scopes ...string) error {
	v, err := ts.Client.Verify(context.Background(), wire.VerifyRequest{Key: secret, Scopes: scopes})
	if err != nil {
		return err
	}
	if v.Code != want {
		return fmt.Errorf("verify of %s...: %s, want %s", keyformat.Start(secret), v.Code, want)
	}
	return nil
}

// checkDestroy asserts that every secret the test saw no longer verifies and
// that only the reserved management app is left.
func (ts *testServer) checkDestroy(*terraform.State) error {
	apps, err := ts.Client.ListApps(context.Background())
	if err != nil {
		return err
	}
	for _, a := range apps {
		if a.Slug != wire.ManagementApp {
			keys, _ := ts.Client.ListKeys(context.Background(), a.Slug, "")
			for _, k := range keys {
				if k.Status != "revoked" {
					return fmt.Errorf("key %s of app %s is %s after destroy", k.ID, a.Slug, k.Status)
				}
			}
			return fmt.Errorf("app %s still exists after destroy", a.Slug)
		}
	}
	ts.mu.Lock()
	secrets := append([]string(nil), ts.secrets...)
	ts.mu.Unlock()
	for _, s := range secrets {
		v, err := ts.Client.Verify(context.Background(), wire.VerifyRequest{Key: s})
		if err != nil {
			return err
		}
		if v.Valid {
			return fmt.Errorf("secret %s... still verifies after destroy", keyformat.Start(s))
		}
	}
	return nil
}
