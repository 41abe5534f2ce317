package api

import (
	"bytes"
	"net/http"

	"github.com/keymint/terraform-provider-keymint/internal/service"
	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// Each handler decodes, calls the service and encodes; nothing else.

func (s *Server) whoami(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	writeJSON(w, http.StatusOK, s.svc.Whoami(p))
	return nil
}

func (s *Server) createApp(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req wire.CreateApp
	if err := decode(w, r, &req); err != nil {
		return err
	}
	app, replayed, err := s.svc.CreateApp(r.Context(), p, req, r.Header.Get(wire.IdempotencyHeader))
	if err != nil {
		return err
	}
	writeReplayable(w, http.StatusCreated, app, replayed)
	return nil
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	apps, err := s.svc.ListApps(r.Context(), p)
	return respond(w, http.StatusOK, apps, err)
}

func (s *Server) getApp(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	app, err := s.svc.GetApp(r.Context(), p, r.PathValue("slug"))
	return respond(w, http.StatusOK, app, err)
}

// updateAppRequest catches the immutable fields, for the service to say why they cannot change.
type updateAppRequest struct {
	wire.UpdateApp
	Slug      *string `json:"slug,omitempty"`
	KeyPrefix *string `json:"key_prefix,omitempty"`
}

func (s *Server) updateApp(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req updateAppRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	app, err := s.svc.UpdateApp(r.Context(), p, r.PathValue("slug"), req.UpdateApp,
		sent(map[string]bool{"slug": req.Slug != nil, "key_prefix": req.KeyPrefix != nil}))
	return respond(w, http.StatusOK, app, err)
}

func (s *Server) deleteApp(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	force := false
	switch v := r.URL.Query().Get("force"); v {
	case "", "false":
	case "true":
		force = true
	default:
		return service.Errorf(service.BadRequest, "invalid_query", "force must be true or false, got %q", v)
	}
	if err := s.svc.DeleteApp(r.Context(), p, r.PathValue("slug"), force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req wire.CreateKey
	if err := decode(w, r, &req); err != nil {
		return err
	}
	k, replayed, err := s.svc.CreateKey(r.Context(), p, r.PathValue("slug"), req, r.Header.Get(wire.IdempotencyHeader))
	if err != nil {
		return err
	}
	writeReplayable(w, http.StatusCreated, k, replayed)
	return nil
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	q := r.URL.Query()
	keys, err := s.svc.ListKeys(r.Context(), p, r.PathValue("slug"),
		service.KeyQuery{Status: q.Get("status"), Limit: q.Get("limit"), Cursor: q.Get("cursor")})
	return respond(w, http.StatusOK, keys, err)
}

func (s *Server) getKey(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	k, err := s.svc.GetKey(r.Context(), p, r.PathValue("id"))
	return respond(w, http.StatusOK, k, err)
}

// updateKeyRequest catches the immutable fields, for the service to say why they cannot change.
type updateKeyRequest struct {
	wire.UpdateKey
	Scopes    any `json:"scopes,omitempty"`
	Resources any `json:"resources,omitempty"`
	Owner     any `json:"owner,omitempty"`
	ExpiresAt any `json:"expires_at,omitempty"`
	App       any `json:"app,omitempty"`
}

func (s *Server) updateKey(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req updateKeyRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	k, err := s.svc.UpdateKey(r.Context(), p, r.PathValue("id"), req.UpdateKey, sent(map[string]bool{
		"scopes": req.Scopes != nil, "resources": req.Resources != nil, "owner": req.Owner != nil,
		"expires_at": req.ExpiresAt != nil, "app": req.App != nil}))
	return respond(w, http.StatusOK, k, err)
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	if err := s.svc.RevokeKey(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) rotateKey(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	var req wire.RotateKey // an empty body rotates with no grace
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeBytes(body, &req); err != nil {
			return err
		}
	}
	k, replayed, err := s.svc.RotateKey(r.Context(), p, r.PathValue("id"), req, r.Header.Get(wire.IdempotencyHeader))
	if err != nil {
		return err
	}
	writeReplayable(w, http.StatusOK, k, replayed)
	return nil
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	q := r.URL.Query()
	evs, err := s.svc.ListEvents(r.Context(), p, service.EventQuery{App: q.Get("app"), Key: q.Get("key"),
		Actor: q.Get("actor"), Action: q.Get("action"), Since: q.Get("since"), Until: q.Get("until"), Limit: q.Get("limit"), Cursor: q.Get("cursor")})
	return respond(w, http.StatusOK, evs, err)
}

func (s *Server) findKey(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req wire.FindKey
	if err := decode(w, r, &req); err != nil {
		return err
	}
	k, err := s.svc.FindKey(r.Context(), p, req.Key)
	return respond(w, http.StatusOK, k, err)
}

func (s *Server) verify(w http.ResponseWriter, r *http.Request, p *service.Principal) error {
	var req wire.VerifyRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	res, err := s.svc.Verify(r.Context(), p, &req)
	return respond(w, http.StatusOK, res, err)
}
