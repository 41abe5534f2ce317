package portal_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// chromium finds Debian's headless Chromium: a missing browser skips the
// test, except under CI=true, where it fails.
func chromium(t *testing.T) string {
	for _, name := range []string{os.Getenv("KEYMINT_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium found (install Debian's chromium package, or set KEYMINT_CHROMIUM); under CI=true the browser tests must run")
	}
	t.Skip("no Chromium found: install Debian's chromium package (or set KEYMINT_CHROMIUM) to run the browser tests")
	return ""
}

// browserProblems collects console errors and warnings, exceptions and
// browser log entries (CSP violations among them) from every page.
type browserProblems struct {
	mu  sync.Mutex
	all []string
}

func (b *browserProblems) add(s string) {
	b.mu.Lock()
	b.all = append(b.all, s)
	b.mu.Unlock()
}

func (b *browserProblems) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.all
	b.all = nil
	return out
}

func newChrome(t *testing.T, exe string, problems *browserProblems) (context.Context, context.CancelFunc) {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 120*time.Second)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	listening := make(chan struct{})
	go func() {
		msgs := chromedp.Console(ctx)
		close(listening)
		for m, err := range msgs {
			if err != nil {
				return
			}
			switch {
			case m.Type == chromedp.ConsoleError, m.Type == chromedp.ConsoleWarning, m.Type == chromedp.ConsoleException, m.Source == "security":
				problems.add(fmt.Sprintf("%s %s: %s (%s)", m.Source, m.Type, m.Text, m.URL))
			}
		}
	}()
	<-listening
	return ctx, func() { cancelTimeout(); cancelCtx(); cancelAlloc() }
}

// screenshots go to KEYMINT_SCREENSHOTS, or a temporary directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("KEYMINT_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestBrowser drives the portal in headless Chromium through its main
// paths, with no console error and no CSP violation on any page.
func TestBrowser(t *testing.T) {
	exe := chromium(t)
	e := newEnv(t)
	e.app("billing", "read")
	problems := &browserProblems{}
	ctx, cancel := newChrome(t, exe, problems)
	defer cancel()
	shots := screenshotDir(t)
	base := e.http.URL
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	id := func(s string) chromedp.ID { return chromedp.ID(s) }

	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if p := problems.take(); len(p) > 0 {
			t.Fatalf("%s: the browser reported:\n%s", what, strings.Join(p, "\n"))
		}
	}
	get := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	shot := func(name string) {
		t.Helper()
		for _, width := range []int64{1280, 390} {
			if width < 640 {
				do("viewport", chromedp.EmulateViewport(width, 900, chromedp.EmulateMobile)) // overlay scrollbars, as on a phone
			} else {
				do("viewport", chromedp.EmulateViewport(width, 900))
			}
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatalf("screenshot %s: %v", name, err)
			}
			if err := os.WriteFile(filepath.Join(shots, fmt.Sprintf("%s-%d.png", name, width)), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		do("viewport back", chromedp.EmulateViewport(1280, 900))
	}
	signIn := func(token string) {
		t.Helper()
		do("sign in", chromedp.Navigate(base+"/ui/signin"), chromedp.WaitVisible(id("token")),
			chromedp.SendKeys(id("token"), token), chromedp.Submit(id("token")), chromedp.WaitVisible(css("nav")))
	}
	apiVerify := func(secret string) string {
		t.Helper()
		body, _ := json.Marshal(wire.VerifyRequest{Key: secret})
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/verify", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+rootToken)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var v wire.VerifyResponse
		if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v.Code
	}

	// The collector hears a CSP violation: a page of another origin with a
	// policy that its inline style breaks.
	other := http.NewServeMux()
	other.HandleFunc("/csp", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		fmt.Fprint(w, `<!doctype html><p style="color:red">inline style</p>`)
	})
	other.HandleFunc("/favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	other.HandleFunc("/forge", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/ui/apps/new"><input name="slug" value="evil"><input name="name" value="Evil">`+
			`<input name="scopes" value="read"><input name="key_prefix" value="evil_live"><button>go</button></form>`, base)
	})
	otherURL := newLocalServer(t, other)
	if err := chromedp.Do(ctx, chromedp.Navigate(otherURL+"/csp"), chromedp.WaitReady(css("p"))); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		if p := problems.take(); len(p) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the browser reported no CSP violation on a page with one: the checks below would prove nothing")
		}
		time.Sleep(50 * time.Millisecond) // the browser's report comes asynchronously
	}

	// Sign in.
	do("sign-in page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(id("token")))
	shot("signin")
	signIn(rootToken)

	// Create an app and a key.
	do("new app", chromedp.Click(css(`a[href="/ui/apps/new"]`)), chromedp.WaitVisible(id("slug")),
		chromedp.SendKeys(id("slug"), "acme"), chromedp.SendKeys(id("name"), "Acme public API"),
		chromedp.SendKeys(id("description"), "Partner access to the data API"),
		chromedp.SendKeys(id("scopes"), "read:data write:data"), chromedp.SendKeys(id("key_prefix"), "acme_live"),
		chromedp.SendKeys(id("rate_requests"), "1000"), chromedp.SendKeys(id("rate_window"), "1m"),
		chromedp.Submit(id("slug")), chromedp.WaitVisible(css(`a[href="/ui/apps/acme/keys/new"]`)))
	do("new key", chromedp.Click(css(`a[href="/ui/apps/acme/keys/new"]`)), chromedp.WaitVisible(id("name")))
	shot("key-form")
	do("create key", chromedp.SendKeys(id("name"), "ingest pipeline"), chromedp.Click(css(`input[value="read:data"]`)),
		chromedp.SendKeys(id("owner"), "data-team"), chromedp.SetValue(id("expiry"), "90d"),
		chromedp.Submit(id("name")), chromedp.WaitVisible(id("secret")), chromedp.WaitVisible(css("button.copy")))
	secret := get("read the secret", chromedp.Value(id("secret")))
	if code := apiVerify(secret); code != wire.CodeValid {
		t.Fatalf("the secret from the page verifies %s", code)
	}
	shot("secret")
	// Reload (Chromium sends the form again): the secret is gone, and no second key was made.
	do("reload", chromedp.Reload(), chromedp.WaitVisible(css("dl.facts")))
	if html := get("page after reload", chromedp.OuterHTML(css("html"))); strings.Contains(html, secret) {
		t.Fatal("the secret is shown again after a reload")
	}
	do("keys list", chromedp.Navigate(base+"/ui/apps/acme"), chromedp.WaitVisible(css("table")))
	if n := strings.Count(get("keys table", chromedp.OuterHTML(css("tbody"))), "<tr>"); n != 1 {
		t.Fatalf("%d keys after a reload of the secret page", n)
	}
	if code := apiVerify(secret); code != wire.CodeValid {
		t.Fatalf("after the reload, the first secret verifies %s", code)
	}
	keyURL, err := chromedp.Run(ctx, chromedp.AttributeValue(css(`td[data-label="Name"] a`), "href"))
	if err != nil {
		t.Fatal(err)
	}
	for _, owner := range []string{"billing-team", "support"} {
		if _, _, err := e.svc.CreateKey(ctx, rootPrincipal(), "acme", wire.CreateKey{Name: "nightly export " + owner, Scopes: []string{"read:data"}, Owner: owner}, ""); err != nil {
			t.Fatal(err)
		}
	}
	do("keys list", chromedp.Reload(), chromedp.WaitVisible(css("table")))
	shot("keys")

	// Rotate with a grace period: both secrets verify, until it ends.
	do("rotate", chromedp.Navigate(base+keyURL.Value), chromedp.Click(css(`a[href$="/rotate"]`)), chromedp.WaitVisible(id("grace")),
		chromedp.SetValue(id("grace"), "24h"), chromedp.Submit(id("grace")), chromedp.WaitVisible(id("secret")))
	rotated := get("read the new secret", chromedp.Value(id("secret")))
	if rotated == secret || apiVerify(rotated) != wire.CodeValid || apiVerify(secret) != wire.CodeValid {
		t.Fatal("after a rotation with a day's grace, both secrets should verify")
	}
	e.clock.Advance(25 * time.Hour)
	if apiVerify(secret) != wire.CodeNotFound {
		t.Fatal("the old secret outlived its grace")
	}
	signIn(rootToken) // the idle timeout passed with the clock

	// Find the key by its secret, then revoke it.
	do("find", chromedp.Navigate(base+"/ui/find"), chromedp.SendKeys(id("secret"), rotated), chromedp.Submit(id("secret")),
		chromedp.WaitVisible(css(".found")))
	if h := get("found", chromedp.Text(css(".found h2"))); !strings.Contains(h, "ingest pipeline") {
		t.Fatalf("find shows %q", h)
	}
	shot("find")
	do("revoke", chromedp.Click(css(".found button.danger")), chromedp.WaitVisible(css(".status.revoked")))
	if code := apiVerify(rotated); code != wire.CodeRevoked {
		t.Fatalf("after revoke: %s", code)
	}
	shot("key")
	for _, page := range []string{"events", "verify", "credentials", "credentials/new", "apps/acme/edit", "apps/acme/delete"} {
		do(page, chromedp.Navigate(base+"/ui/"+page), chromedp.WaitVisible(css("main h1")))
		if page == "events" || page == "credentials/new" {
			shot(strings.ReplaceAll(page, "/", "-"))
		}
	}

	// A forged cross-origin POST is refused and changes nothing.
	do("forged post", chromedp.Navigate(otherURL+"/forge"), chromedp.WaitVisible(id("f")))
	if err := chromedp.Do(ctx, chromedp.Submit(id("f")), chromedp.WaitVisible(css("main h1"))); err != nil {
		t.Fatal(err)
	}
	if h := get("refusal", chromedp.Text(css("main"))); !strings.Contains(h, "another site") {
		t.Fatalf("the forged post got: %s", h)
	}
	problems.take() // the refusal's 403 is reported as a failed load
	if _, err := e.store.GetApp(context.Background(), "evil"); err == nil {
		t.Fatal("a cross-origin form created an app")
	}

	// Signing out ends the session.
	do("sign out", chromedp.Navigate(base+"/ui/apps"), chromedp.Click(css(`form[action="/ui/signout"] button`)), chromedp.WaitVisible(id("token")))
	do("after sign-out", chromedp.Navigate(base+"/ui/apps"), chromedp.WaitVisible(id("token")))
	if loc := get("location", chromedp.Location()); !strings.HasSuffix(loc, "/ui/signin") {
		t.Fatalf("after sign-out, /ui/apps shows %s", loc)
	}

	// A confined credential sees only its apps, and no button it cannot use;
	// revoking it ends its session.
	credID, confined := e.credential([]string{wire.ScopeAppsRead, wire.ScopeKeysRead}, "billing")
	signIn(confined)
	if apps := get("apps", chromedp.Text(css("main"))); !strings.Contains(apps, "billing") || strings.Contains(apps, "acme") {
		t.Fatalf("a credential confined to billing sees: %s", apps)
	}
	if nodes, err := chromedp.Run(ctx, chromedp.Nodes(css(`a[href="/ui/apps/new"]`), chromedp.AtLeast(0))); err != nil || len(nodes) > 0 {
		t.Fatalf("a credential without apps:write sees New app (%v)", err)
	}
	shot("apps-confined")
	if err := e.svc.RevokeKey(context.Background(), rootPrincipal(), credID); err != nil {
		t.Fatal(err)
	}
	do("after revoking the credential", chromedp.Navigate(base+"/ui/apps"), chromedp.WaitVisible(id("token")))
	if loc := get("location", chromedp.Location()); !strings.HasSuffix(loc, "/ui/signin") {
		t.Fatalf("after revoking the credential, /ui/apps shows %s", loc)
	}
	t.Logf("screenshots in %s", shots)
}
