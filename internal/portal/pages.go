package portal

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keymint/terraform-provider-keymint/internal/api"
	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/vocab"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// Each handler reads the form, calls the service as the signed-in
// principal and renders a page; the rules are the service's.

func (p *portal) routes() []route {
	return []route{
		{"POST /ui/signout", p.signOut},
		{"POST /ui/signout-everywhere", p.signOutEverywhere},
		{"GET /ui/apps", p.apps},
		{"GET /ui/apps/new", p.appForm},
		{"POST /ui/apps/new", p.createApp},
		{"GET /ui/apps/{slug}", p.keys},
		{"GET /ui/apps/{slug}/edit", p.appForm},
		{"POST /ui/apps/{slug}/edit", p.updateApp},
		{"GET /ui/apps/{slug}/delete", p.deleteAppPage},
		{"POST /ui/apps/{slug}/delete", p.deleteApp},
		{"GET /ui/apps/{slug}/keys/new", p.keyForm},
		{"POST /ui/apps/{slug}/keys/new", p.createKey},
		{"GET /ui/credentials", p.keys},
		{"GET /ui/credentials/new", p.keyForm},
		{"GET /ui/keys/{id}", p.key},
		{"POST /ui/keys/{id}/edit", p.updateKey},
		{"POST /ui/keys/{id}/enable", p.enableKey},
		{"POST /ui/keys/{id}/disable", p.enableKey},
		{"GET /ui/keys/{id}/rotate", p.rotatePage},
		{"POST /ui/keys/{id}/rotate", p.rotateKey},
		{"GET /ui/keys/{id}/revoke", p.revokePage},
		{"POST /ui/keys/{id}/revoke", p.revokeKey},
		{"GET /ui/find", p.findPage},
		{"POST /ui/find", p.findKey},
		{"GET /ui/events", p.events},
		{"GET /ui/verify", p.verifyPage},
		{"POST /ui/verify", p.verify},
	}
}

// formPage is a form shown again with what was sent and what was wrong.
type formPage struct {
	Form   url.Values
	Errors []string
}

func (f formPage) Val(name string) string { return f.Form.Get(name) }
func (f formPage) Checked(name, v string) bool {
	return slices.Contains(f.Form[name], v)
}

// formErrors says what was wrong with a form the service refused, to show
// it again with what was sent: the field errors of a validation failure, or
// the reason of a refusal (a credential beyond the caller's, a taken slug).
// nil for anything else, which gets the error page.
func formErrors(err error) ([]string, int) {
	var e *service.Error
	if !errors.As(err, &e) {
		return nil, 0
	}
	switch e.Kind {
	case service.Invalid:
		var out []string
		for _, f := range e.Fields {
			out = append(out, f.Field+": "+f.Message)
		}
		return out, http.StatusUnprocessableEntity
	case service.Forbidden, service.Conflict:
		return []string{e.Message}, api.StatusOf(e.Kind)
	}
	return nil, 0
}

// invalid is formErrors for the forms that keep 422 for every refusal.
func invalid(err error) []string {
	out, _ := formErrors(err)
	return out
}

// words splits a list typed as words separated by spaces, commas or lines.
func words(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// metadata reads "key=value" lines.
func metadata(v string) (map[string]string, []string) {
	m := map[string]string{}
	var errs []string
	for _, line := range strings.Split(v, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, val, ok := strings.Cut(line, "=")
		if !ok {
			errs = append(errs, fmt.Sprintf("metadata: %q is not key=value", line))
			continue
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	return m, errs
}

func metadataText(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, m[k])
	}
	return b.String()
}

// ---- apps

type appsPage struct {
	Query string
	Apps  []wire.App
}

func (p *portal) apps(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	list, err := p.Service.ListApps(r.Context(), s.p)
	if err != nil {
		return err
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	d := appsPage{Query: q}
	for _, a := range list.Apps {
		if a.Slug == wire.ManagementApp {
			continue // under Credentials
		}
		if q == "" || strings.Contains(strings.ToLower(a.Slug+" "+a.Name), strings.ToLower(q)) {
			d.Apps = append(d.Apps, a)
		}
	}
	p.render(w, r, http.StatusOK, "apps", &page{s: s, Title: "Apps", Nav: "apps", Data: d})
	return nil
}

type appFormPage struct {
	formPage
	Once string
	Edit bool
	Slug string
}

func (p *portal) appForm(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	d := appFormPage{formPage: formPage{Form: url.Values{}}, Once: newID()}
	if slug := r.PathValue("slug"); slug != "" {
		a, err := p.Service.GetApp(r.Context(), s.p, slug)
		if err != nil {
			return err
		}
		if err := service.Require(s.p, wire.ScopeAppsWrite); err != nil {
			return err
		}
		d.Edit, d.Slug = true, slug
		d.Form.Set("name", a.Name)
		d.Form.Set("description", a.Description)
		d.Form.Set("scopes", strings.Join(a.Scopes, " "))
		d.Form.Set("key_prefix", a.KeyPrefix)
		if a.RateLimit != nil {
			d.Form.Set("rate_requests", strconv.Itoa(a.RateLimit.Requests))
			d.Form.Set("rate_window", a.RateLimit.Window)
		}
	} else if err := service.Require(s.p, wire.ScopeAppsWrite); err != nil {
		return err
	}
	p.render(w, r, http.StatusOK, "app_form", &page{s: s, Title: map[bool]string{true: "Edit app " + d.Slug, false: "New app"}[d.Edit], Nav: "apps", Data: d})
	return nil
}

// rateLimitOf reads the form's rate limit; nil if both fields are empty.
func rateLimitOf(f url.Values) (*wire.RateLimit, []string) {
	req, win := strings.TrimSpace(f.Get("rate_requests")), strings.TrimSpace(f.Get("rate_window"))
	if req == "" && win == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(req)
	if err != nil {
		return nil, []string{"rate_limit.requests: must be a whole number"}
	}
	return &wire.RateLimit{Requests: n, Window: win}, nil
}

func (p *portal) createApp(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	f := r.PostForm
	rl, errs := rateLimitOf(f)
	status := http.StatusUnprocessableEntity
	var err error
	if errs == nil {
		_, _, err = p.Service.CreateApp(r.Context(), s.p, wire.CreateApp{Slug: strings.TrimSpace(f.Get("slug")), Name: f.Get("name"),
			Description: f.Get("description"), Scopes: words(f.Get("scopes")), KeyPrefix: strings.TrimSpace(f.Get("key_prefix")), RateLimit: rl}, onceKey(f))
		errs, status = formErrors(err)
	}
	if errs != nil {
		p.render(w, r, status, "app_form", &page{s: s, Title: "New app", Nav: "apps", Data: appFormPage{formPage: formPage{Form: f, Errors: errs}, Once: newID()}})
		return nil
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/apps/"+url.PathEscape(f.Get("slug")), http.StatusSeeOther)
	return nil
}

func (p *portal) updateApp(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	slug := r.PathValue("slug")
	f := r.PostForm
	rl, errs := rateLimitOf(f)
	var err error
	if errs == nil {
		name, desc := f.Get("name"), f.Get("description")
		_, err = p.Service.UpdateApp(r.Context(), s.p, slug, wire.UpdateApp{Name: &name, Description: &desc, Scopes: words(f.Get("scopes")),
			RateLimit: wire.Nullable[wire.RateLimit]{Set: true, Value: rl}}, nil)
		errs = invalid(err)
	}
	if errs != nil {
		p.render(w, r, http.StatusUnprocessableEntity, "app_form", &page{s: s, Title: "Edit app " + slug, Nav: "apps",
			Data: appFormPage{formPage: formPage{Form: f, Errors: errs}, Edit: true, Slug: slug}})
		return nil
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/apps/"+url.PathEscape(slug), http.StatusSeeOther)
	return nil
}

type deletePage struct {
	App    wire.App
	Error  string
	KeyIDs []string
}

func (p *portal) deleteAppPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	a, err := p.Service.GetApp(r.Context(), s.p, r.PathValue("slug"))
	if err != nil {
		return err
	}
	if err := service.Require(s.p, wire.ScopeAppsWrite); err != nil {
		return err
	}
	p.render(w, r, http.StatusOK, "app_delete", &page{s: s, Title: "Delete app " + a.Slug, Nav: "apps", Data: deletePage{App: a}})
	return nil
}

func (p *portal) deleteApp(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	a, err := p.Service.GetApp(r.Context(), s.p, r.PathValue("slug"))
	if err != nil {
		return err
	}
	d := deletePage{App: a}
	if strings.TrimSpace(r.PostFormValue("confirm")) != a.Slug {
		d.Error = fmt.Sprintf("Type the app's slug, %s, to confirm. Nothing was deleted.", a.Slug)
		p.render(w, r, http.StatusUnprocessableEntity, "app_delete", &page{s: s, Title: "Delete app " + a.Slug, Nav: "apps", Data: d})
		return nil
	}
	err = p.Service.DeleteApp(r.Context(), s.p, a.Slug, r.PostFormValue("force") == "on")
	var e *service.Error
	if errors.As(err, &e) && e.Code == "live_keys" {
		d.Error, d.KeyIDs = e.Message, e.KeyIDs
		p.render(w, r, http.StatusConflict, "app_delete", &page{s: s, Title: "Delete app " + a.Slug, Nav: "apps", Data: d})
		return nil
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/apps", http.StatusSeeOther)
	return nil
}

// ---- keys

type keysPage struct {
	App         wire.App
	Credentials bool // the management app's keys
	Keys        []wire.Key
	Filter      url.Values
	Next, First template.URL // the next page; the first, from a later one
	Statuses    []string
	Error       string
}

func (k keysPage) F(name string) string { return k.Filter.Get(name) }

// days reads a filter's number of days (0: none).
func days(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 36500 {
		return 0, service.Errorf(service.BadRequest, "invalid_query", "days must be a whole number from 1 to 36500, got %q", v)
	}
	return time.Duration(n) * 24 * time.Hour, nil
}

func (p *portal) keys(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	slug := r.PathValue("slug")
	if slug == "" {
		slug = wire.ManagementApp
	}
	if slug == wire.ManagementApp && r.URL.Path != "/ui/credentials" {
		http.Redirect(w, r, "/ui/credentials", http.StatusSeeOther)
		return nil
	}
	q := r.URL.Query()
	d := keysPage{Credentials: slug == wire.ManagementApp, Filter: q, Statuses: vocab.Statuses}
	if !d.Credentials { // management credentials are shown by the management rule, key by key
		a, err := p.Service.GetApp(r.Context(), s.p, slug)
		if err != nil {
			return err
		}
		d.App = a
	}
	expiring, err := days(q.Get("expiring_days"))
	if err != nil {
		return err
	}
	unused, err := days(q.Get("unused_days"))
	if err != nil {
		return err
	}
	list, err := p.Service.ListKeys(r.Context(), s.p, slug, service.KeyQuery{Status: q.Get("status"), Cursor: q.Get("cursor"), Limit: "50",
		Owner: strings.TrimSpace(q.Get("owner")), ExpiringWithin: expiring, UnusedFor: unused})
	if err != nil {
		return err
	}
	d.Keys = list.Keys
	d.Next, d.First = pages(q, list.NextCursor)
	title := "Keys of " + slug
	if d.Credentials {
		title = "Management credentials"
	}
	p.render(w, r, http.StatusOK, "keys", &page{s: s, Title: title, Nav: map[bool]string{true: "credentials", false: "apps"}[d.Credentials], Data: d})
	return nil
}

type keyFormPage struct {
	formPage
	Once        string // see onceKey
	App         wire.App
	Credentials bool
	Scopes      []string // the scopes to offer
	Apps        []string // a credential's confinement choices
	Confined    bool     // the caller is confined: a credential it mints must be too
}

// keyFormData is the create form for app slug: an app's scopes, or for a
// management credential the caller's own (never more than it holds).
func (p *portal) keyFormData(r *http.Request, s *signedIn, slug string, f url.Values) (keyFormPage, error) {
	d := keyFormPage{formPage: formPage{Form: f}, Credentials: slug == wire.ManagementApp, Once: newID()}
	if err := service.Require(s.p, wire.ScopeKeysWrite); err != nil {
		return d, err
	}
	if d.Credentials {
		d.App = wire.App{Slug: slug, Name: "Management credentials"}
		for _, sc := range wire.ManagementScopes {
			if s.can(sc) {
				d.Scopes = append(d.Scopes, sc)
			}
		}
		d.Confined = len(s.p.ConfineTo) > 0
		d.Apps = s.p.ConfineTo
		if !d.Confined {
			if list, err := p.Service.ListApps(r.Context(), s.p); err == nil {
				for _, a := range list.Apps {
					if a.Slug != wire.ManagementApp {
						d.Apps = append(d.Apps, a.Slug)
					}
				}
			}
		}
		return d, nil
	}
	a, err := p.Service.GetApp(r.Context(), s.p, slug)
	if err != nil {
		return d, err
	}
	d.App, d.Scopes = a, a.Scopes
	return d, nil
}

func keyFormTitle(d keyFormPage) string {
	if d.Credentials {
		return "New management credential"
	}
	return "New key for " + d.App.Slug
}

func (p *portal) keyForm(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	slug := r.PathValue("slug")
	if slug == "" {
		slug = wire.ManagementApp
	}
	d, err := p.keyFormData(r, s, slug, url.Values{"expiry": {"never"}})
	if err != nil {
		return err
	}
	p.render(w, r, http.StatusOK, "key_form", &page{s: s, Title: keyFormTitle(d), Nav: map[bool]string{true: "credentials", false: "apps"}[d.Credentials], Data: d})
	return nil
}

// expiryPresets are the form's choices, in days.
var expiryPresets = map[string]int{"1d": 1, "7d": 7, "30d": 30, "90d": 90, "365d": 365}

func (p *portal) expiresAt(f url.Values) (string, []string) {
	switch v := f.Get("expiry"); v {
	case "", "never":
		return "", nil
	case "date":
		t, err := time.Parse("2006-01-02", f.Get("expiry_date"))
		if err != nil {
			return "", []string{"expires_at: choose a date (YYYY-MM-DD)"}
		}
		return t.UTC().Format(time.RFC3339), nil
	default:
		n, ok := expiryPresets[v]
		if !ok {
			return "", []string{"expires_at: choose one of the offered expiries"}
		}
		return p.Clock().UTC().Add(time.Duration(n) * 24 * time.Hour).Truncate(time.Second).Format(time.RFC3339), nil
	}
}

type secretPage struct {
	Key     wire.Key
	Secret  string
	Rotated bool
	Grace   string
}

// onceKey is the Idempotency-Key of a form: a random value the form was
// rendered with, so that sending it again (a reload, a double click) is
// recognised.
func onceKey(f url.Values) string {
	if v := f.Get("once"); v != "" {
		return "portal-" + v
	}
	return ""
}

// sentBefore redirects a form sent again after it made a secret to the key,
// without a secret: it was shown once, in the first answer.
func (p *portal) sentBefore(w http.ResponseWriter, r *http.Request, s *signedIn) bool {
	key := onceKey(r.PostForm)
	if key == "" {
		return false
	}
	rec, err := p.Sessions.GetIdempotency(r.Context(), s.p.ID, key)
	if err != nil {
		return false
	}
	http.Redirect(w, r, "/ui/keys/"+url.PathEscape(rec.ResourceID)+"?shown=1", http.StatusSeeOther)
	return true
}

func (p *portal) createKey(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	slug := r.PathValue("slug")
	f := r.PostForm
	if p.sentBefore(w, r, s) {
		return nil
	}
	d, err := p.keyFormData(r, s, slug, f)
	if err != nil {
		return err
	}
	md, errs := metadata(f.Get("metadata"))
	status := http.StatusUnprocessableEntity
	expires, e2 := p.expiresAt(f)
	errs = append(errs, e2...)
	resources := words(f.Get("resources"))
	if d.Credentials {
		resources = f["confine"]
	}
	var out wire.KeyWithSecret
	if errs == nil {
		out, _, err = p.Service.CreateKey(r.Context(), s.p, slug, wire.CreateKey{Name: strings.TrimSpace(f.Get("name")), Scopes: f["scopes"],
			Resources: resources, Owner: strings.TrimSpace(f.Get("owner")), Metadata: md, ExpiresAt: expires}, onceKey(f))
		errs, status = formErrors(err)
	}
	if errs != nil {
		d.Errors = errs
		p.render(w, r, status, "key_form", &page{s: s, Title: keyFormTitle(d), Nav: "apps", Data: d})
		return nil
	}
	if err != nil {
		return err
	}
	p.showSecret(w, r, s, secretPage{Key: out.Key, Secret: out.Secret})
	return nil
}

// showSecret renders the secret in the answer to the POST itself: never in
// a URL, a session or a page that can be fetched again (no-store).
func (p *portal) showSecret(w http.ResponseWriter, r *http.Request, s *signedIn, d secretPage) {
	p.render(w, r, http.StatusOK, "secret", &page{s: s, Title: "Copy the secret now", Data: d})
}

type keyPage struct {
	Shown    bool // arrived from a form sent again: its secret is not shown again
	Key      wire.Key
	Metadata string
	Events   []wire.Event
	Error    []string
}

func (p *portal) key(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	k, err := p.Service.GetKey(r.Context(), s.p, r.PathValue("id"))
	if err != nil {
		return err
	}
	d := keyPage{Key: k, Metadata: metadataText(k.Metadata), Shown: r.URL.Query().Get("shown") == "1"}
	if s.can(wire.ScopeAuditRead) {
		if evs, err := p.Service.ListEvents(r.Context(), s.p, service.EventQuery{Key: k.ID, Limit: "20"}); err == nil {
			d.Events = evs.Events
		}
	}
	p.render(w, r, http.StatusOK, "key", &page{s: s, Title: "Key: " + k.Name, Nav: navOf(k), Data: d})
	return nil
}

func navOf(k wire.Key) string {
	if k.App == wire.ManagementApp {
		return "credentials"
	}
	return "apps"
}

func (p *portal) updateKey(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id := r.PathValue("id")
	name := strings.TrimSpace(r.PostFormValue("name"))
	md, errs := metadata(r.PostFormValue("metadata"))
	var err error
	if errs == nil {
		_, err = p.Service.UpdateKey(r.Context(), s.p, id, wire.UpdateKey{Name: &name, Metadata: &md}, nil)
		errs = invalid(err)
	}
	if errs != nil {
		k, gerr := p.Service.GetKey(r.Context(), s.p, id)
		if gerr != nil {
			return gerr
		}
		k.Name = name
		p.render(w, r, http.StatusUnprocessableEntity, "key", &page{s: s, Title: "Key: " + k.Name, Nav: navOf(k),
			Data: keyPage{Key: k, Metadata: r.PostFormValue("metadata"), Error: errs}})
		return nil
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/keys/"+url.PathEscape(id), http.StatusSeeOther)
	return nil
}

func (p *portal) enableKey(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id := r.PathValue("id")
	enabled := strings.HasSuffix(r.URL.Path, "/enable")
	if _, err := p.Service.UpdateKey(r.Context(), s.p, id, wire.UpdateKey{Enabled: &enabled}, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/keys/"+url.PathEscape(id), http.StatusSeeOther)
	return nil
}

// gracePresets are the rotation form's choices.
var gracePresets = []string{"0s", "1h", "24h", "168h", "720h"}

type rotatePage struct {
	Once   string
	Key    wire.Key
	Graces []string
}

func (p *portal) rotatePage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	k, err := p.Service.GetKey(r.Context(), s.p, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := service.Require(s.p, wire.ScopeKeysWrite); err != nil {
		return err
	}
	p.render(w, r, http.StatusOK, "rotate", &page{s: s, Title: "Rotate " + k.Name, Nav: navOf(k), Data: rotatePage{Key: k, Graces: gracePresets, Once: newID()}})
	return nil
}

func (p *portal) rotateKey(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	grace := r.PostFormValue("grace")
	if !slices.Contains(gracePresets, grace) {
		return service.Errorf(service.BadRequest, "invalid_form", "choose one of the offered grace periods")
	}
	if p.sentBefore(w, r, s) {
		return nil
	}
	out, _, err := p.Service.RotateKey(r.Context(), s.p, r.PathValue("id"), wire.RotateKey{GracePeriod: grace}, onceKey(r.PostForm))
	if err != nil {
		return err
	}
	p.showSecret(w, r, s, secretPage{Key: out.Key, Secret: out.Secret, Rotated: true, Grace: grace})
	return nil
}

func (p *portal) revokePage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	k, err := p.Service.GetKey(r.Context(), s.p, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := service.Require(s.p, wire.ScopeKeysWrite); err != nil {
		return err
	}
	p.render(w, r, http.StatusOK, "revoke", &page{s: s, Title: "Revoke " + k.Name, Nav: navOf(k), Data: k})
	return nil
}

func (p *portal) revokeKey(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	id := r.PathValue("id")
	if err := p.Service.RevokeKey(r.Context(), s.p, id); err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/keys/"+url.PathEscape(id), http.StatusSeeOther)
	return nil
}

// pages are the links to the next page of a list (none at its end) and,
// from a later page, back to the first, with the same filters.
func pages(q url.Values, cursor string) (next, first template.URL) {
	v := url.Values{}
	for k, vs := range q {
		if k != "cursor" {
			v[k] = vs
		}
	}
	if q.Get("cursor") != "" {
		first = template.URL("?" + v.Encode())
	}
	if cursor != "" {
		v.Set("cursor", cursor)
		next = template.URL("?" + v.Encode())
	}
	return next, first
}

// ---- find, verify, events

type findPage struct {
	Key   *wire.Key
	Error string
}

func (p *portal) findPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	if err := service.Require(s.p, wire.ScopeKeysRead); err != nil {
		return err
	}
	p.render(w, r, http.StatusOK, "find", &page{s: s, Title: "Find a key by its secret", Nav: "find"})
	return nil
}

// findKey takes the secret from the form body and shows the key, never the secret.
func (p *portal) findKey(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	k, err := p.Service.FindKey(r.Context(), s.p, strings.TrimSpace(r.PostFormValue("secret")))
	var e *service.Error
	if errors.As(err, &e) && e.Kind == service.NotFound {
		p.render(w, r, http.StatusNotFound, "find", &page{s: s, Title: "Find a key by its secret", Nav: "find", Data: findPage{Error: e.Message}})
		return nil
	}
	if err != nil {
		return err
	}
	p.render(w, r, http.StatusOK, "find", &page{s: s, Title: "Find a key by its secret", Nav: "find", Data: findPage{Key: &k}})
	return nil
}

type verifyPage struct {
	Form    url.Values
	Verdict *wire.VerifyResponse
}

func (p *portal) verifyPage(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	if err := service.Require(s.p, wire.ScopeVerify); err != nil {
		return err
	}
	p.render(w, r, http.StatusOK, "verify", &page{s: s, Title: "Verify a key", Nav: "verify", Data: verifyPage{Form: url.Values{}}})
	return nil
}

func (p *portal) verify(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	v, err := p.Service.Verify(r.Context(), s.p, &wire.VerifyRequest{Key: strings.TrimSpace(r.PostFormValue("secret")),
		Scopes: words(r.PostFormValue("scopes")), Resource: strings.TrimSpace(r.PostFormValue("resource"))})
	if err != nil {
		return err
	}
	f := url.Values{"scopes": {r.PostFormValue("scopes")}, "resource": {r.PostFormValue("resource")}} // never the secret
	p.render(w, r, http.StatusOK, "verify", &page{s: s, Title: "Verify a key", Nav: "verify", Data: verifyPage{Form: f, Verdict: v}})
	return nil
}

type eventsPage struct {
	Filter  url.Values
	Events  []wire.Event
	Next    template.URL
	First   template.URL
	Actions []string
}

func (e eventsPage) F(name string) string { return e.Filter.Get(name) }

var actions = []string{service.ActionAppCreate, service.ActionAppUpdate, service.ActionAppDelete, service.ActionKeyCreate,
	service.ActionCredentialMint, service.ActionKeyUpdate, service.ActionKeyEnable, service.ActionKeyDisable,
	service.ActionKeyRotate, service.ActionKeyRevoke, service.ActionKeyDelete, service.ActionSecretReissue}

// rfc3339 reads a datetime-local input (or RFC 3339) as UTC.
func rfc3339(v string) string {
	if v == "" {
		return ""
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC().Format(time.RFC3339)
		}
	}
	return v // the service says what is wrong with it
}

func (p *portal) events(w http.ResponseWriter, r *http.Request, s *signedIn) error {
	q := r.URL.Query()
	list, err := p.Service.ListEvents(r.Context(), s.p, service.EventQuery{App: strings.TrimSpace(q.Get("app")), Key: strings.TrimSpace(q.Get("key")),
		Actor: strings.TrimSpace(q.Get("actor")), Action: q.Get("action"), Since: rfc3339(q.Get("since")), Until: rfc3339(q.Get("until")),
		Limit: "50", Cursor: q.Get("cursor")})
	if err != nil {
		return err
	}
	d := eventsPage{Filter: q, Events: list.Events, Actions: actions}
	d.Next, d.First = pages(q, list.NextCursor)
	p.render(w, r, http.StatusOK, "events", &page{s: s, Title: "Audit trail", Nav: "events", Data: d})
	return nil
}
