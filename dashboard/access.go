package dashboard

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// tokenCookie carries the token for the browser: an EventSource cannot send
// a header, and a token in every link would end up in the history.
const tokenCookie = "nasctl_token"

// Listen listens on addr. On a loopback address the token may be empty; on
// any other address one is required, and Listen makes one when token is
// empty. It returns the token the server must require ("" for none).
func Listen(addr, token string) (net.Listener, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); (ok && tcp.IP.IsLoopback()) || token != "" {
		return ln, token, nil
	}
	if token, err = NewToken(); err != nil {
		ln.Close()
		return nil, "", err
	}
	return ln, token, nil
}

// NewToken returns a random token of 128 bits, hex-encoded.
func NewToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making a token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// URL is the address at which a browser opens the dashboard served on ln
// with token.
func URL(ln net.Listener, token string) string {
	host := ln.Addr().String()
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		// Every interface: this machine's name reaches it from the others.
		name, err := os.Hostname()
		if err != nil {
			name = "localhost"
		}
		host = net.JoinHostPort(name, fmt.Sprint(tcp.Port))
	}
	u := url.URL{Scheme: "http", Host: host, Path: "/"}
	if token != "" {
		u.RawQuery = url.Values{"token": {token}}.Encode()
	}
	return u.String()
}

// guard sets the security headers and lets through only requests that carry
// the token or, without a token, name a loopback host (so that a web page
// elsewhere cannot read the dashboard through a DNS name rebound to
// 127.0.0.1). A page opened with the token in its query gets the cookie and
// is sent to the same address without it.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		switch {
		case s.opts.Token == "" && !loopbackHost(r.Host):
			writeError(w, http.StatusForbidden, "this dashboard answers only on a loopback address; start it with --addr and use the token it prints")
		case s.opts.Token == "":
			next.ServeHTTP(w, r)
		case !s.authorized(r):
			writeError(w, http.StatusUnauthorized, "token required: open the address nasctl ui printed, or send Authorization: Bearer TOKEN")
		case r.URL.Query().Has("token") && !strings.HasPrefix(r.URL.Path, "/api/"):
			// Lax, not Strict: the address is often opened from a link in
			// another page, whose navigation a Strict cookie would miss on
			// the redirect below. The dashboard changes nothing, and Lax
			// still keeps the cookie off other sites' requests for parts.
			http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: s.opts.Token, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
			q := r.URL.Query()
			q.Del("token")
			u := *r.URL
			u.RawQuery = q.Encode()
			http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// authorized reports whether r carries the server's token.
func (s *Server) authorized(r *http.Request) bool {
	given := r.URL.Query().Get("token")
	if auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		given = auth
	} else if c, err := r.Cookie(tokenCookie); given == "" && err == nil {
		given = c.Value
	}
	return subtle.ConstantTimeCompare([]byte(given), []byte(s.opts.Token)) == 1
}

// loopbackHost reports whether the Host header names this machine's
// loopback: localhost, or a loopback IP.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
