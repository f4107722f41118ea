package bff

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
)

// The login form's CSRF token. Before a login there is no session to hold a per-session token, so the
// login page gets a signed double-submit token: the same value in an HttpOnly cookie and in the form's
// hidden field, signed with a key derived from SESSION_KEYS and stamped with its expiry. A cross-site page
// can neither read the cookie nor mint a value the signature accepts, so it cannot forge the pair; under
// https the cookie's __Host- prefix keeps a sibling subdomain from planting one of its own. It guards
// against login CSRF (being logged in, unknowingly, as someone else's terminal) in browsers that send
// neither Origin nor Sec-Fetch-Site, which sameOriginForm relies on first.

const loginTokenLife = 2 * time.Hour // a login page left open this long must be reloaded

func (s *Server) loginCookieName() string {
	if s.cfg.Secure() {
		return "__Host-beadbff_login"
	}
	return "beadbff_login"
}

// newLoginToken is "payload.signature": payload is 16 random bytes and the expiry in Unix seconds.
func (s *Server) newLoginToken() string {
	var payload [24]byte
	_, _ = rand.Read(payload[:16]) // crypto/rand.Read never fails on supported platforms
	binary.BigEndian.PutUint64(payload[16:], uint64(s.now().Add(loginTokenLife).Unix()))
	p := base64.RawURLEncoding.EncodeToString(payload[:])
	return p + "." + base64.RawURLEncoding.EncodeToString(loginTokenMAC(s.web.loginKeys[0], p))
}

func loginTokenMAC(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("login\x00" + payload))
	return m.Sum(nil)
}

// validLoginToken checks the signature (under any configured key, so a key rotation does not break the
// login pages already open) and the expiry.
func (s *Server) validLoginToken(tok string) bool {
	p, sig, ok := strings.Cut(tok, ".")
	if !ok || len(tok) > 200 {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || err2 != nil || len(payload) != 24 {
		return false
	}
	signed := false
	for _, k := range s.web.loginKeys {
		if hmac.Equal(mac, loginTokenMAC(k, p)) {
			signed = true
		}
	}
	return signed && s.now().Unix() < int64(binary.BigEndian.Uint64(payload[16:]))
}

// loginToken returns the login page's token: the browser's current one while it is valid (so that two
// open login tabs both work), else a new one, set as the cookie.
func (s *Server) loginToken(c *fiber.Ctx) string {
	if tok := c.Cookies(s.loginCookieName()); s.validLoginToken(tok) {
		return utils.CopyString(tok)
	}
	tok := s.newLoginToken()
	c.Cookie(&fiber.Cookie{
		Name:     s.loginCookieName(),
		Value:    tok,
		Path:     "/", // required by the __Host- prefix
		HTTPOnly: true,
		Secure:   s.cfg.Secure(),
		// Strict: the cookie is only ever needed by a POST from beadbff's own login page.
		SameSite: fiber.CookieSameSiteStrictMode,
		MaxAge:   int(loginTokenLife / time.Second),
	})
	return tok
}

// loginFormToken checks the login form's token pair. It runs after sameOriginForm, which has already
// turned away forms that a browser says came from another site.
func (s *Server) loginFormToken(c *fiber.Ctx) error {
	cookie, field := c.Cookies(s.loginCookieName()), c.FormValue("csrf")
	if cookie == "" || subtle.ConstantTimeCompare([]byte(cookie), []byte(field)) != 1 || !s.validLoginToken(cookie) {
		return &Problem{Status: http.StatusForbidden, Cause: CauseCSRFTokenInvalid, Title: "Login form expired",
			Detail: "This login form is too old, or was not opened in this browser, so it was refused and nothing was done. " +
				"Open the login page again and log in from there."}
	}
	return c.Next()
}

// crossSiteForm is the refusal of a form another site sent, saying why in the words of what the browser
// reported, so that the person (or whoever runs the other site) can see what happened.
func crossSiteForm(own, origin, site string) *Problem {
	from := "another site"
	if origin != "" && origin != "null" {
		from = logSafe(origin)
	}
	evidence := "Your browser reported that it came from " + from
	if site != "" {
		evidence += " (Sec-Fetch-Site: " + logSafe(site) + ")"
	}
	return &Problem{Status: http.StatusForbidden, Cause: CauseCSRFTokenInvalid, Title: "Form sent from another site",
		Detail: evidence + ", not from beadbff's own pages at " + own + ". A page elsewhere can try to make your browser " +
			"act for you with your session, so such forms are refused: nothing was done. If you meant to do this, open " +
			own + " yourself and do it from there."}
}
