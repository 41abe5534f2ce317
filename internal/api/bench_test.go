package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// BenchmarkVerify measures the verify handler in process (no network), with a
// verify-scoped credential as applications use, over 1,000 keys.
func BenchmarkVerify(b *testing.B) {
	e := newEnv(b)
	if r := e.do(rootToken, "POST", "/v1/apps", `{"slug":"acme","name":"A","scopes":["read","write"],"key_prefix":"acme","rate_limit":{"requests":1000000,"window":"1s"}}`); r.status != 201 {
		b.Fatal(r.status)
	}
	var cred wire.KeyWithSecret
	e.do(rootToken, "POST", "/v1/apps/keymint/keys", `{"name":"verifier","scopes":["verify"]}`).decode(b, &cred)
	var bodies [][]byte
	for i := range 1000 {
		var k wire.KeyWithSecret
		e.do(rootToken, "POST", "/v1/apps/acme/keys", `{"name":"k","scopes":["read"],"metadata":{"team":"t"}}`).decode(b, &k)
		scopes := []string{"read"}
		if i%20 == 0 {
			scopes = []string{"write"}
		}
		body, _ := json.Marshal(wire.VerifyRequest{Key: k.Secret, Scopes: scopes})
		bodies = append(bodies, body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			req := httptest.NewRequest("POST", "/v1/verify", bytes.NewReader(bodies[i%len(bodies)]))
			req.Header.Set("Authorization", "Bearer "+cred.Secret)
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			e.srv.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				panic(fmt.Sprint(rec.Code, rec.Body.String()))
			}
			i += 13
		}
	})
}
