package bead

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/oauth2"
)

// Defaults for a Config that leaves them out.
const (
	DefaultTimeout = 10 * time.Second
	TrackingByID   = "tracking" // GET /payments/tracking/{trackingId}
	TrackingByPay  = "payment"  // GET /Payments/{paymentId}/tracking, Bead's newest form
)

// maxAnswerBody bounds a successful answer: Bead's payment objects are a few KiB.
const maxAnswerBody = 1 << 20

// userAgent names this product to Bead, so that their logs can tell it from a browser or a WAF probe.
const userAgent = "beadbff"

// Client talks to one Bead environment: one identity realm and one payments API. It holds no tokens:
// the caller (the session's terminal record) owns them and passes the access token into each call. A
// Client is safe for concurrent use.
type Client struct {
	cfg         Config // normalised: URLs without trailing slash, defaults filled
	apiURL      string
	identityURL string
	httpClient  http.Client // a copy of cfg.HTTPClient that never follows redirects
	oauth       oauth2.Config
}

// New checks cfg and returns a client. The URLs must be absolute http(s) URLs without credentials, query
// or fragment; a trailing slash is dropped. Timeout defaults to 10 s, TrackingPath to "tracking", Now to
// time.Now. Every problem is reported at once.
func New(cfg Config) (*Client, error) {
	var problems []error
	apiURL, err := baseURL(cfg.APIURL)
	if err != nil {
		problems = append(problems, configProblem("APIURL", err))
	}
	identityURL, err := baseURL(cfg.IdentityURL)
	if err != nil {
		problems = append(problems, configProblem("IdentityURL", err))
	}
	if cfg.ClientID == "" {
		problems = append(problems, configProblem("ClientID", errors.New("empty (Bead's terminal client is bead-terminal)")))
	}
	if cfg.APIKey != "" && !headerSafe(cfg.APIKey) {
		problems = append(problems, configProblem("APIKey", errors.New("contains characters a header cannot carry")))
	}
	switch {
	case cfg.Timeout < 0:
		problems = append(problems, configProblem("Timeout", fmt.Errorf("%s is negative", cfg.Timeout)))
	case cfg.Timeout == 0:
		cfg.Timeout = DefaultTimeout
	}
	switch cfg.TrackingPath {
	case "":
		cfg.TrackingPath = TrackingByID
	case TrackingByID, TrackingByPay:
	default:
		problems = append(problems, configProblem("TrackingPath", fmt.Errorf("%q is neither %q nor %q", cfg.TrackingPath, TrackingByID, TrackingByPay)))
	}
	if err := errors.Join(problems...); err != nil {
		return nil, fmt.Errorf("bead: config: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.APIURL, cfg.IdentityURL = apiURL, identityURL
	cfg.Scopes = slices.Clone(cfg.Scopes)

	c := &Client{cfg: cfg, apiURL: apiURL, identityURL: identityURL}
	if cfg.HTTPClient != nil {
		c.httpClient = *cfg.HTTPClient // a copy, so the caller's client keeps its own redirect policy
	}
	// Bead's API has no reason to redirect; following one would resend the credentials to wherever the
	// Location points, or turn a POST into a GET. A 3xx comes back as an *APIError instead.
	c.httpClient.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.oauth = oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		Scopes:       cfg.Scopes,
		Endpoint: oauth2.Endpoint{
			TokenURL:  identityURL + "/protocol/openid-connect/token",
			AuthURL:   identityURL + "/protocol/openid-connect/auth",
			AuthStyle: oauth2.AuthStyleInParams, // Bead's terminal client is public: client_id in the form, no Basic auth
		},
	}
	return c, nil
}

// APIURL is the payments API base, without a trailing slash.
func (c *Client) APIURL() string { return c.apiURL }

// IdentityURL is the realm base, without a trailing slash; it is also the issuer tokens must carry.
func (c *Client) IdentityURL() string { return c.identityURL }

// ClientID is the OAuth client the tokens are requested for.
func (c *Client) ClientID() string { return c.cfg.ClientID }

// Scopes are the scopes requested at login (a copy).
func (c *Client) Scopes() []string { return slices.Clone(c.cfg.Scopes) }

// UsesAPIKey reports whether payments calls authenticate with X-Api-Key instead of the access token.
func (c *Client) UsesAPIKey() bool { return c.cfg.APIKey != "" }

// configProblem names the Config field a problem is about.
func configProblem(field string, err error) error {
	return fmt.Errorf("%s: %w", field, err)
}

func baseURL(raw string) (string, error) {
	if strings.TrimSpace(raw) == "" {
		return "", errors.New("empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("not a URL: %v", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q: scheme must be http or https", raw)
	case u.Host == "":
		return "", fmt.Errorf("%q: no host", raw)
	case u.User != nil:
		return "", errors.New("credentials in the URL are not supported")
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("%q: a base URL has no query or fragment", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

type requestIDKey struct{}

// WithRequestID returns a context whose calls to Bead carry id as x-request-id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFrom is the id WithRequestID put in ctx, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// maxRequestIDLen bounds the x-request-id forwarded to Bead.
const maxRequestIDLen = 128

// requestIDFor is the context's request id when it can travel in a header, or a fresh UUID: a call to
// Bead never goes out without one, and never with one that could break or forge a header.
func requestIDFor(ctx context.Context) string {
	if id := RequestIDFrom(ctx); id != "" && len(id) <= maxRequestIDLen && headerSafe(id) {
		return id
	}
	return uuid.NewString()
}

// headerSafe reports whether s is visible ASCII without spaces or quotes.
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == '"' {
			return false
		}
	}
	return s != ""
}

// call is one exchange with Bead: its deadline, its request id and the record of what was sent.
type call struct {
	op         string
	ctx        context.Context
	cancel     context.CancelFunc
	start      time.Time // when the call began: token lifetimes count from here
	httpClient *http.Client
	rec        *recorder
}

func (c *Client) newCall(ctx context.Context, op string) *call {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	base := c.httpClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	rec := &recorder{base: base, requestID: requestIDFor(ctx), now: c.cfg.Now}
	hc := c.httpClient
	hc.Transport = rec
	return &call{op: op, ctx: ctx, cancel: cancel, start: c.cfg.Now(), httpClient: &hc, rec: rec}
}

// oauthContext hands this call's HTTP client to golang.org/x/oauth2, so that token grants get the same
// request id, recording, timeout and redirect policy as every other call.
func (cl *call) oauthContext() context.Context {
	return context.WithValue(cl.ctx, oauth2.HTTPClient, cl.httpClient)
}

// recorder is the transport of one call: it adds x-request-id and the User-Agent and keeps a redacted
// record of the request. Each call has its own, so no locking is needed.
type recorder struct {
	base      http.RoundTripper
	requestID string
	now       func() time.Time

	sent         SentRequest
	roundTripErr error
	gotResponse  bool
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context()) // a RoundTripper must not change the caller's request
	req.Header.Set("X-Request-Id", r.requestID)
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", userAgent)
	}
	r.sent = describeRequest(req, r.requestID, r.now())
	resp, err := r.base.RoundTrip(req)
	r.roundTripErr = err
	r.gotResponse = err == nil
	return resp, err
}

// answer is an HTTP answer read into memory, its body bounded.
type answer struct {
	status     int
	header     http.Header
	body       []byte
	truncated  bool
	receivedAt time.Time
}

func (a *answer) ok() bool { return a.status >= 200 && a.status <= 299 }

// do sends req and reads the answer: at most maxAnswerBody of a 2xx body, at most maxErrorBody (+1 byte
// to know it was cut) of any other, never an unbounded read.
func (cl *call) do(req *http.Request) (*answer, error) {
	resp, err := cl.httpClient.Do(req)
	if err != nil {
		return nil, cl.transportError(err)
	}
	defer resp.Body.Close()
	limit := int64(maxErrorBody)
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		limit = maxAnswerBody
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, cl.transportError(err)
	}
	a := &answer{status: resp.StatusCode, header: resp.Header, body: body, receivedAt: cl.rec.now()}
	if int64(len(body)) > limit {
		a.body, a.truncated = body[:limit], true
	}
	return a, nil
}

func (cl *call) transportError(err error) *TransportError {
	timeout := errors.Is(err, context.DeadlineExceeded) || errors.Is(cl.ctx.Err(), context.DeadlineExceeded)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		timeout = true
	}
	return &TransportError{Op: cl.op, Request: cl.rec.sent, Timeout: timeout, Err: err}
}

// apiError turns a non-2xx answer into an *APIError with everything the body says.
func (cl *call) apiError(a *answer) *APIError {
	body, header := redactJWTs(a.body), redactAnswerHeader(a.header)
	f := classifyErrorBody(header.Get("Content-Type"), body, a.truncated)
	return &APIError{
		Op:          cl.op,
		Request:     cl.rec.sent,
		Status:      a.status,
		Header:      header,
		Body:        body,
		BodyTrunc:   a.truncated,
		Shape:       f.Shape,
		Title:       f.Title,
		Detail:      f.Detail,
		Code:        f.Code,
		TraceID:     f.TraceID,
		RequestID:   firstNonEmpty(header.Get("X-Request-Id"), f.RequestID),
		FieldErrors: f.FieldErrors,
		RetryAfter:  retryAfter(header, a.receivedAt),
		ReceivedAt:  a.receivedAt,
	}
}

// callAPI makes one authenticated call to the payments API and returns a 2xx answer, or an *APIError,
// *TransportError or validation error. path is already escaped.
func (c *Client) callAPI(ctx context.Context, op, method, path, accessToken string, body []byte, extra http.Header) (*answer, error) {
	cl := c.newCall(ctx, op)
	defer cl.cancel()
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(cl.ctx, method, c.apiURL+path, reader)
	if err != nil {
		return nil, fmt.Errorf("bead: %s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	for k, v := range extra {
		req.Header[k] = v
	}
	if err := c.authorize(req.Header, accessToken); err != nil {
		return nil, fmt.Errorf("bead: %s: %w", op, err)
	}
	a, err := cl.do(req)
	if err != nil {
		return nil, err
	}
	if !a.ok() {
		return nil, cl.apiError(a)
	}
	return a, nil
}

// authorize sets the credential of a payments call: the configured API key, or exactly
// "Bearer <token>". A token that is empty or could not be a bearer token (RFC 6750 b64token: quotes,
// spaces, a pasted "Bearer ") is refused here, since Bead would only answer it with a bare 403.
func (c *Client) authorize(h http.Header, accessToken string) error {
	if c.cfg.APIKey != "" {
		h.Set("X-Api-Key", c.cfg.APIKey)
		return nil
	}
	if !bearerToken(accessToken) {
		return ErrNoAccessToken
	}
	h.Set("Authorization", "Bearer "+accessToken)
	return nil
}

// bearerToken reports whether s matches RFC 6750's b64token: [A-Za-z0-9-._~+/]+ then optional '='s.
func bearerToken(s string) bool {
	if s == "" || s == "null" || s == "undefined" || len(s) > maxTokenLen {
		return false
	}
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		ch := body[i]
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		case strings.IndexByte("-._~+/", ch) >= 0:
		default:
			return false
		}
	}
	return true
}
