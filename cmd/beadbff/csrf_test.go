package main

import (
	"bytes"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// loginFormToken opens the login page as a browser would and returns the form's pre-session token; its
// cookie goes into c's jar.
func (e *env) loginFormToken(c *http.Client) string {
	e.t.Helper()
	page := e.do(c, "GET", e.url+"/login", nil, nil)
	m := csrfField.FindSubmatch(page.body)
	if page.status != http.StatusOK || m == nil {
		e.t.Fatalf("login page: %d, no csrf field in it", page.status)
	}
	return string(m[1])
}

// loginCookie is the Cookie header value of the login form's token cookie in c's jar.
func (e *env) loginCookie(c *http.Client) string {
	e.t.Helper()
	u, _ := url.Parse(e.url)
	for _, ck := range c.Jar.Cookies(u) {
		if strings.HasSuffix(ck.Name, "beadbff_login") {
			return ck.Name + "=" + ck.Value
		}
	}
	e.t.Fatal("no login form cookie in the jar")
	return ""
}

// The login form carries a pre-session token: without it, with another browser's, or with a forged one,
// the login is refused before anything reaches Bead; with its own it works.
func TestLoginFormToken(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true})
	term := e.sandbox.Terminals()[0]
	creds := "username=" + term.TerminalID + "&password=" + url.QueryEscape(term.Password)

	other := e.client()
	othersToken := e.loginFormToken(other)

	browser := e.client()
	token := e.loginFormToken(browser)
	if again := e.loginFormToken(browser); again != token {
		t.Errorf("a second login tab got another token (%q, %q): the first tab's form would fail", token, again)
	}
	tokenRequests := e.stat("tokenRequests", "password")
	cases := []struct {
		name string
		c    *http.Client
		body string
	}{
		{"no token", browser, creds},
		{"another browser's token (its cookie is not this browser's)", browser, creds + "&csrf=" + url.QueryEscape(othersToken)},
		{"a forged token", browser, creds + "&csrf=" + url.QueryEscape(strings.Repeat("A", 32)+"."+strings.Repeat("B", 43))},
		{"the right token from a browser without the cookie", e.client(), creds + "&csrf=" + url.QueryEscape(token)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.form(tc.c, "/login", tc.body)
			if r.status != http.StatusForbidden || !bytes.Contains(r.body, []byte("csrf_token_invalid")) {
				t.Errorf("%d, want 403 csrf_token_invalid", r.status)
			}
		})
	}
	if n := e.stat("tokenRequests", "password"); n != tokenRequests {
		t.Errorf("%v password grants for refused forms, want none", n-tokenRequests)
	}
	if ok := e.form(browser, "/login", creds+"&csrf="+url.QueryEscape(token)); ok.status != http.StatusSeeOther {
		t.Errorf("login with the page's own token: %d, want 303", ok.status)
	}
	if n := e.stat("tokenRequests", "password"); n != tokenRequests+1 {
		t.Errorf("the accepted form made %v password grants, want 1 (is the sandbox counting?)", n-tokenRequests)
	}
}

// A form another site sent is refused with a page that says what the browser reported, and nothing is done.
func TestCrossSiteFormRefusalSaysWhy(t *testing.T) {
	e := startEnv(t, envOptions{noRedis: true})
	browser := e.client()
	token := e.loginFormToken(browser)
	req, _ := http.NewRequest("POST", e.url+"/login", strings.NewReader("username=x&password=y&csrf="+url.QueryEscape(token)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	for _, want := range []string{"Form sent from another site", "https://evil.example", "cross-site", "nothing was done", "csrf_token_invalid"} {
		if !strings.Contains(body.String(), want) {
			t.Errorf("refusal page lacks %q", want)
		}
	}
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("%d, Cache-Control %q; want 403, no-store", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
}
