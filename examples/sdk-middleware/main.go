// Command sdk-middleware is a small service whose API keys keymint checks.
//
//	KEYMINT_ENDPOINT=http://127.0.0.1:8080 KEYMINT_TOKEN=<a token with the verify scope> go run ./examples/sdk-middleware
//	curl -H "Authorization: Bearer <a key of app reports with reports:read>" localhost:8081/reports/q3
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/keymint/terraform-provider-keymint/keymint"
	"github.com/keymint/terraform-provider-keymint/keymint/middleware"
)

func main() {
	c, err := keymint.New(os.Getenv("KEYMINT_ENDPOINT"), os.Getenv("KEYMINT_TOKEN"))
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe("127.0.0.1:8081", routes(c)))
}

// routes protects each route with the scopes it needs; a key confined to
// resources may read only the reports it names.
func routes(c *keymint.Client) http.Handler {
	report := middleware.Resource(func(r *http.Request) string { return r.PathValue("id") })
	read := middleware.New(c, middleware.Scopes("reports:read"), report)
	write := middleware.New(c, middleware.Scopes("reports:write"), report)

	mux := http.NewServeMux()
	mux.Handle("GET /reports/{id}", read(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, _ := middleware.FromContext(r.Context())
		fmt.Fprintf(w, "report %s for %s (plan %s)\n", r.PathValue("id"), v.Owner, v.Metadata["plan"])
	})))
	mux.Handle("PUT /reports/{id}", write(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	return mux
}
