package httpapi

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/gorilla/mux"
)

func errorsNew(s string) error                { return errors.New(s) }
func strconvItoa(i int) string                { return strconv.Itoa(i) }
func muxVar(r *http.Request, k string) string { return mux.Vars(r)[k] }

// serve runs one request through s in process, as org; the answer is
// checked against the contract like every other (contract_test.go).
func serve(t testing.TB, s *Server, method, path string, org testOrg) response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if org.ClientID != "" {
		req.Header.Set("X-API-Key", org.ClientID)
		req.Header.Set("X-API-Secret", org.Secret)
	}
	rec := httptest.NewRecorder()
	checkContract(t, s, s.Handler()).ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return response{Status: rec.Code, Header: rec.Header(), Body: b}
}
