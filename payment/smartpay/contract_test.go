package smartpay_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/kioskd/kioskd/payment/smartpay"
)

// contract validates every request that reaches the simulator and every
// answer it gives against openapi.yaml, so the client, the simulator and the
// document cannot drift apart. Violations are collected and fail the test at
// cleanup.
type contract struct {
	router  routers.Router
	lenient atomic.Bool // the test sends invalid requests on purpose

	mu         sync.Mutex
	violations []string
	checked    map[string]int // "POST /v1/auth 200" → count
}

func loadContract(t testing.TB) *contract {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(smartpay.OpenAPI)
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml invalid: %v", err)
	}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &contract{router: r, checked: map[string]int{}}
}

func (c *contract) violation(format string, args ...any) {
	c.mu.Lock()
	c.violations = append(c.violations, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

// requireSession checks that the session cookie was sent where the document
// asks for it.
func requireSession(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecurityScheme.In != "cookie" {
		return fmt.Errorf("unexpected security scheme %q", in.SecuritySchemeName)
	}
	if _, err := in.RequestValidationInput.Request.Cookie(in.SecurityScheme.Name); err != nil {
		return fmt.Errorf("no %s cookie", in.SecurityScheme.Name)
	}
	return nil
}

func (c *contract) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		route, params, err := c.router.FindRoute(r)
		if err != nil {
			c.violation("%s %s: no route: %v", r.Method, r.URL.Path, err)
			next.ServeHTTP(w, r)
			return
		}
		in := &openapi3filter.RequestValidationInput{
			Request: r, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: requireSession, MultiError: true},
		}
		if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil && !c.lenient.Load() {
			c.violation("request %s %s: %v", r.Method, r.URL.Path, err)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &recorderHijacker{ResponseRecorder: httptest.NewRecorder(), w: w}
		next.ServeHTTP(rec, r)
		if rec.hijacked || !rec.wrote { // dropped by a fault, or abandoned at shutdown: no answer to check
			return
		}
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
			Body:    io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
			Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		}
		if err := openapi3filter.ValidateResponse(r.Context(), out); err != nil {
			c.violation("response %s %s %d: %v", r.Method, r.URL.Path, rec.Code, err)
		}
		c.mu.Lock()
		c.checked[fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, rec.Code)]++
		c.mu.Unlock()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// recorderHijacker records the answer but lets a drop fault hijack the real
// connection.
type recorderHijacker struct {
	*httptest.ResponseRecorder
	w        http.ResponseWriter
	hijacked bool
	wrote    bool
}

func (r *recorderHijacker) WriteHeader(code int) {
	r.wrote = true
	r.ResponseRecorder.WriteHeader(code)
}

func (r *recorderHijacker) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseRecorder.Write(b)
}

func (r *recorderHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	r.hijacked = true
	return r.w.(http.Hijacker).Hijack()
}

func (c *contract) check(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.violations {
		t.Errorf("contract: %s", v)
	}
}
