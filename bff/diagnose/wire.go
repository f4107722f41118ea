package diagnose

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"beadbff/bff/bead"
)

// challenge is a parsed WWW-Authenticate header (RFC 9110 §11.6.1): the scheme and its parameters.
type challenge struct {
	present     bool
	scheme      string // lower case
	params      map[string]string
	raw         string
	description string // error_description, for short
}

func (c challenge) bearer() bool { return c.scheme == "bearer" }
func (c challenge) errCode() string {
	return strings.ToLower(c.params["error"])
}

// parseChallenge reads the first challenge of a WWW-Authenticate header. It is tolerant: quoted values
// may hold commas and escaped quotes, unquoted ones end at a comma, junk is skipped. Bead's API speaks
// ASP.NET's JwtBearer: `Bearer`, or `Bearer error="invalid_token", error_description="..."`.
func parseChallenge(h http.Header) challenge {
	raw := strings.TrimSpace(h.Get("WWW-Authenticate"))
	if raw == "" {
		return challenge{}
	}
	c := challenge{present: true, raw: raw, params: map[string]string{}}
	scheme, rest, _ := strings.Cut(raw, " ")
	c.scheme = strings.ToLower(strings.TrimSuffix(scheme, ","))
	for rest = strings.TrimSpace(rest); rest != ""; rest = strings.TrimSpace(rest) {
		name, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		name = strings.ToLower(strings.Trim(strings.TrimSpace(name), ","))
		after = strings.TrimSpace(after)
		var value string
		if strings.HasPrefix(after, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(after); i++ {
				ch := after[i]
				if ch == '\\' && i+1 < len(after) {
					i++
					b.WriteByte(after[i])
					continue
				}
				if ch == '"' {
					break
				}
				b.WriteByte(ch)
			}
			value = b.String()
			rest = after[min(i+1, len(after)):]
		} else {
			value, rest, _ = strings.Cut(after, ",")
			value = strings.TrimSpace(value)
		}
		rest = strings.TrimPrefix(strings.TrimSpace(rest), ",")
		if _, seen := c.params[name]; !seen {
			c.params[name] = value
		}
	}
	c.description = c.params["error_description"]
	return c
}

// tokenComplaint is what an IdentityModel message (JwtBearer's error_description) says about a token.
type tokenComplaint int

const (
	complaintNone tokenComplaint = iota
	complaintOther
	complaintExpired
	complaintNotYetValid
	complaintIssuer
	complaintKeyNotFound
	complaintSignature
	complaintAudience
)

// classifyComplaint reads the wording of Microsoft.IdentityModel, in its plain form ("The token expired
// at '...'") and its IDX form ("IDX10223: Lifetime validation failed. The token is expired.").
func classifyComplaint(desc string) tokenComplaint {
	d := strings.ToLower(desc)
	switch {
	case d == "":
		return complaintNone
	case strings.Contains(d, "not valid before") || strings.Contains(d, "idx10222") || strings.Contains(d, "not yet valid"):
		return complaintNotYetValid
	case strings.Contains(d, "expired") || strings.Contains(d, "idx10223"):
		return complaintExpired
	case strings.Contains(d, "issuer") || strings.Contains(d, "idx10205") || strings.Contains(d, "idx10211"):
		return complaintIssuer
	case strings.Contains(d, "audience") || strings.Contains(d, "idx10214") || strings.Contains(d, "idx10208"):
		return complaintAudience
	case strings.Contains(d, "key was not found") || strings.Contains(d, "idx10501") || strings.Contains(d, "idx10503"):
		return complaintKeyNotFound
	case strings.Contains(d, "signature"):
		return complaintSignature
	}
	return complaintOther
}

var (
	expiredAtRe   = regexp.MustCompile(`(?i)expired at '([^']{1,64})'`)
	validToRe     = regexp.MustCompile(`(?i)ValidTo(?: \(UTC\))?: '([^']{1,64})'`)
	currentTimeRe = regexp.MustCompile(`(?i)Current time(?: \(UTC\))?: '([^']{1,64})'`)
	notBeforeRe   = regexp.MustCompile(`(?i)not valid before '([^']{1,64})'`)
	issuerRe      = regexp.MustCompile(`(?i)issuer(?::)? '([^']{1,512})'`)
)

// aspnetLayouts are how .NET prints a DateTime in the messages: the invariant culture's
// "MM/dd/yyyy HH:mm:ss", en-US's "M/d/yyyy h:mm:ss tt", and ISO forms.
var aspnetLayouts = []string{"01/02/2006 15:04:05", "1/2/2006 3:04:05 PM", time.RFC3339Nano, "2006-01-02 15:04:05Z", "2006-01-02 15:04:05"}

// messageTime finds the first time re captures in desc, read as UTC.
func messageTime(re *regexp.Regexp, desc string) (time.Time, bool) {
	m := re.FindStringSubmatch(desc)
	if m == nil {
		return time.Time{}, false
	}
	for _, layout := range aspnetLayouts {
		if t, err := time.Parse(layout, strings.TrimSpace(m[1])); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// namedIssuer is the issuer an IdentityModel message quotes.
func namedIssuer(desc string) string {
	if m := issuerRe.FindStringSubmatch(desc); m != nil {
		return m[1]
	}
	return ""
}

// ResourceOf completes what the incident says about the ids a request names with what the request
// itself shows: terminalId and merchantId of a JSON body, and the ids in Bead's paths. The server reads
// the tracking id from it to look the payment up in its index before diagnosing.
func ResourceOf(given Resource, sent bead.SentRequest) Resource {
	r := given
	if r.TerminalID == "" || r.MerchantID == "" {
		var body struct {
			TerminalID any `json:"terminalId"`
			MerchantID any `json:"merchantId"`
		}
		s := strings.TrimSpace(sent.BodySummary)
		if strings.HasPrefix(s, "{") && json.Unmarshal([]byte(s), &body) == nil {
			if r.TerminalID == "" {
				r.TerminalID = scalar(body.TerminalID)
			}
			if r.MerchantID == "" {
				r.MerchantID = scalar(body.MerchantID)
			}
		} else if strings.HasPrefix(s, "{") {
			// A body cut at the summary's 2 KiB is no longer JSON; its ids come first and are still there.
			if r.TerminalID == "" {
				r.TerminalID = firstMatch(terminalFieldRe, s)
			}
			if r.MerchantID == "" {
				r.MerchantID = firstMatch(merchantFieldRe, s)
			}
		}
	}
	u, err := url.Parse(sent.URL)
	if err != nil {
		return r
	}
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	for i := range segs {
		segs[i], _ = url.PathUnescape(segs[i])
	}
	at := func(i int, want string) bool { return i < len(segs) && strings.EqualFold(segs[i], want) }
	for i := 0; i < len(segs); i++ {
		switch {
		case at(i, "payments") && at(i+1, "tracking") && i+2 < len(segs) && r.TrackingID == "":
			r.TrackingID = segs[i+2] // /payments/tracking/{trackingId}
		case at(i, "terminals") && i+1 < len(segs) && r.TerminalID == "":
			r.TerminalID = segs[i+1] // /Terminals/{terminalId}/webhook
		}
	}
	return r
}

var (
	terminalFieldRe = regexp.MustCompile(`"terminalId"\s*:\s*"([^"\\]{1,128})"`)
	merchantFieldRe = regexp.MustCompile(`"merchantId"\s*:\s*"([^"\\]{1,128})"`)
)

func firstMatch(re *regexp.Regexp, s string) string {
	if m := re.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case float64:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return ""
}

// origin is the verdict on who wrote an answer: Bead's API, or something in front of it.
type origin struct {
	beadSigns  []Evidence // facts that point at Bead's API
	proxySigns []Evidence // facts that point at a WAF, proxy or load balancer
	html       bool
	foreign    bool // a Server header that is not Bead's, or a proxy's own header
}

// proxyHeaders are headers that WAFs, CDNs and load balancers add and Bead's API does not.
var proxyHeaders = []struct{ name, who string }{
	{"Cf-Ray", "Cloudflare"}, {"Cf-Mitigated", "Cloudflare"}, {"X-Amzn-Waf-Action", "AWS WAF"},
	{"X-Amz-Cf-Id", "Amazon CloudFront"}, {"X-Sucuri-Id", "Sucuri"}, {"X-Iinfo", "Imperva"},
	{"Akamai-Grn", "Akamai"}, {"X-Azure-Ref", "Azure Front Door"}, {"Via", "a proxy"},
	{"X-Amzn-Errortype", "AWS API Gateway or WAF"}, {"X-Amzn-Requestid", "AWS API Gateway"}, {"X-Amz-Apigw-Id", "AWS API Gateway"},
}

// knownServers names the front ends a Server header most often reveals.
var knownServers = []struct{ prefix, who string }{
	{"awselb", "an AWS load balancer"}, {"cloudflare", "Cloudflare"}, {"nginx", "nginx"}, {"openresty", "OpenResty (nginx)"},
	{"akamaighost", "Akamai"}, {"cloudfront", "Amazon CloudFront"}, {"envoy", "Envoy"}, {"istio-envoy", "Istio"},
	{"microsoft-azure-application-gateway", "Azure Application Gateway"}, {"apache", "Apache httpd"},
	{"varnish", "Varnish"}, {"squid", "Squid"}, {"big-ip", "F5 BIG-IP"}, {"haproxy", "HAProxy"}, {"caddy", "Caddy"},
}

// readOrigin weighs the headers and body of an answer.
func readOrigin(h http.Header, shape string, body []byte, sentRequestID string) origin {
	var o origin
	server := h.Get("Server")
	switch {
	case strings.Contains(strings.ToLower(server), "kestrel"):
		o.beadSigns = append(o.beadSigns, Evidence{"Server: " + quote(server, 80) + ", the ASP.NET Core server Bead's API runs on", "response header Server"})
	case server != "":
		who := "not Bead's API server (Kestrel)"
		for _, k := range knownServers {
			if strings.HasPrefix(strings.ToLower(server), k.prefix) {
				who = k.who + ", not Bead's API server (Kestrel)"
				break
			}
		}
		o.foreign = true
		o.proxySigns = append(o.proxySigns, Evidence{"Server: " + quote(server, 80) + " is " + who, "response header Server"})
	}
	if id := h.Get("X-Request-Id"); id != "" {
		fact := "x-request-id " + quote(id, 128) + " in the answer"
		if sentRequestID != "" && id == sentRequestID {
			fact = "x-request-id " + quote(id, 128) + " echoed, as Bead's API does"
		}
		o.beadSigns = append(o.beadSigns, Evidence{fact, "response header x-request-id"})
	}
	if ch := parseChallenge(h); ch.bearer() {
		o.beadSigns = append(o.beadSigns, Evidence{"WWW-Authenticate: " + quote(ch.raw, maxHeaderQuote) + ", the challenge of Bead's bearer-token check", "response header WWW-Authenticate"})
	}
	if shape == bead.ShapeProblem && strings.Contains(string(body[:min(len(body), 4096)]), `"traceId"`) {
		o.beadSigns = append(o.beadSigns, Evidence{"a ProblemDetails body with a traceId, as ASP.NET Core writes", "response body"})
	}
	for _, p := range proxyHeaders {
		if v := h.Get(p.name); v != "" {
			o.foreign = true
			o.proxySigns = append(o.proxySigns, Evidence{p.name + ": " + quote(v, 80) + " (added by " + p.who + ")", "response header " + p.name})
		}
	}
	if shape == bead.ShapeHTML {
		o.html = true
		o.proxySigns = append(o.proxySigns, Evidence{"the body is an HTML page" + htmlTitleOf(body) + "; Bead's API answers JSON or nothing", "response body"})
	}
	if len(o.beadSigns) == 0 && (o.html || o.foreign) {
		o.proxySigns = append(o.proxySigns, Evidence{"none of Bead's headers (Server: Kestrel, x-request-id)", "response headers"})
	}
	return o
}

// blocked reports whether the answer came from something in front of Bead, and how sure that is.
func (o origin) blocked() (bool, string) {
	switch {
	case o.html && len(o.beadSigns) == 0:
		return true, ConfidenceHigh
	case o.html:
		return true, ConfidenceMedium
	case o.foreign && len(o.beadSigns) == 0:
		return true, ConfidenceMedium
	}
	return false, ""
}

// answeredBy says who wrote the answer, by the signs that decide the cause: what makes a refusal
// blocked_before_bead makes its writer a proxy, and Bead's own signs or error shape make it Bead's.
func (f *facts) answeredBy() string {
	if !f.answered {
		return ""
	}
	blocked, _ := f.origin.blocked()
	if f.realmCall() {
		// Keycloak behind nginx is normal: only an HTML page says a proxy wrote the realm's answer, as in
		// grantFailure and discoveryFailure.
		blocked = f.origin.html
	}
	switch {
	case blocked:
		return AnsweredByProxy
	case len(f.origin.beadSigns) > 0:
		return AnsweredByBead
	}
	switch f.shape {
	case bead.ShapeProblem, bead.ShapeCodeError, bead.ShapeErrorMessage:
		return AnsweredByBead // the error bodies of Bead's API and realm (bead-api.md, "errors")
	}
	return AnsweredByUnknown
}

// realmCall reports whether the call went to Bead's identity realm (a grant or its discovery document).
func (f *facts) realmCall() bool {
	return f.grantOp() || f.in.Op == OpDiscovery || f.api != nil && f.api.Op == OpDiscovery
}

var titleRe = regexp.MustCompile(`(?is)<title[^>]*>(.{0,200}?)</title`)

func htmlTitleOf(body []byte) string {
	m := titleRe.FindSubmatch(body[:min(len(body), 16<<10)])
	if m == nil {
		return ""
	}
	t := strings.Join(strings.Fields(string(m[1])), " ")
	if t == "" {
		return ""
	}
	return ` titled "` + quote(t, 120) + `"`
}
