package sandbox

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// This file is the hosted payment page at /pay/{paymentPageId}: where a shopper would pick a
// currency and pay. Here a tester picks the outcome instead, one button per final status. The
// page is self-contained (no external assets), so it works offline and inside an iframe.

// pageOutcomes are the buttons, in the order shown.
var pageOutcomes = []struct{ Status, Label string }{
	{statusCompleted, "Pay in full"},
	{statusUnderpaid, "Pay too little (underpaid)"},
	{statusOverpaid, "Pay too much (overpaid)"},
	{statusExpired, "Let it expire"},
	{statusCancelled, "Cancel payment"},
}

type pageView struct {
	PageID       string
	MerchantName string
	Terminal     string
	Amount       string
	Reference    string
	Description  string
	Status       string
	Final        bool
	Notice       string
	ReturnURL    string // set when the merchant gave a redirectUrl
	Outcomes     []struct{ Status, Label string }
}

var pageTemplate = template.Must(template.New("pay").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pay {{.MerchantName}} - Bead sandbox</title>
<style>
body { font-family: system-ui, sans-serif; background: #f4f4f7; color: #1c1c28; margin: 0; padding: 2rem 1rem; }
main { max-width: 26rem; margin: 0 auto; background: #fff; border-radius: 12px; padding: 1.5rem; box-shadow: 0 1px 4px rgba(0,0,0,.12); }
.badge { display: inline-block; font-size: .75rem; background: #fde68a; border-radius: 4px; padding: .1rem .4rem; }
.amount { font-size: 2rem; font-weight: 700; margin: .5rem 0; }
dl { display: grid; grid-template-columns: auto 1fr; gap: .25rem 1rem; }
dt { color: #555; }
dd { margin: 0; overflow-wrap: anywhere; }
button { display: block; width: 100%; margin: .5rem 0; padding: .7rem; font-size: 1rem; border: 1px solid #999; border-radius: 8px; background: #fff; cursor: pointer; }
button.primary { background: #1f4fd1; color: #fff; border-color: #1f4fd1; }
.notice { background: #fee2e2; border-radius: 6px; padding: .5rem; }
</style>
</head>
<body>
<main>
<p><span class="badge">Sandbox: no real money moves</span></p>
<h1 data-testid="merchant">{{.MerchantName}}</h1>
<p data-testid="terminal">{{.Terminal}}</p>
<p class="amount" data-testid="amount">{{.Amount}}</p>
<dl>
<dt>Reference</dt><dd data-testid="reference">{{.Reference}}</dd>
{{- if .Description}}
<dt>Description</dt><dd data-testid="description">{{.Description}}</dd>
{{- end}}
<dt>Status</dt><dd data-testid="status">{{.Status}}</dd>
</dl>
{{- if .Notice}}
<p class="notice" role="alert" data-testid="notice">{{.Notice}}</p>
{{- end}}
{{- if not .Final}}
<form method="post" action="/pay/{{.PageID}}">
{{- range $i, $o := .Outcomes}}
<button type="submit" name="outcome" value="{{$o.Status}}" data-testid="outcome-{{$o.Status}}"{{if eq $i 0}} class="primary"{{end}}>{{$o.Label}}</button>
{{- end}}
</form>
{{- end}}
{{- if .ReturnURL}}
<p><a href="{{.ReturnURL}}" data-testid="return">Return to {{.MerchantName}}</a></p>
{{- end}}
</main>
</body>
</html>
`))

func (s *Sandbox) pageRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /pay/{pageId}", s.handlePage)
	mux.HandleFunc("POST /pay/{pageId}", s.handlePagePost)
	return mux
}

func (s *Sandbox) handlePage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	p := s.state.byPageID[strings.ToLower(r.PathValue("pageId"))]
	var view pageView
	if p != nil {
		view = viewOf(p)
	}
	s.mu.Unlock()
	if p == nil {
		http.Error(w, "This payment page does not exist.", http.StatusNotFound)
		return
	}
	renderPage(w, http.StatusOK, view)
}

func (s *Sandbox) handlePagePost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	outcome := r.PostFormValue("outcome")
	valid := false
	for _, o := range pageOutcomes {
		valid = valid || o.Status == outcome
	}

	s.mu.Lock()
	p := s.state.byPageID[strings.ToLower(r.PathValue("pageId"))]
	if p == nil {
		s.mu.Unlock()
		http.Error(w, "This payment page does not exist.", http.StatusNotFound)
		return
	}
	if !valid || isFinal(p.status) {
		view := viewOf(p)
		s.mu.Unlock()
		status := http.StatusBadRequest
		view.Notice = "Pick one of the buttons."
		if valid {
			status = http.StatusConflict
			view.Notice = "This payment is already " + view.Status + "; a final payment cannot change."
		}
		renderPage(w, status, view)
		return
	}
	// Straight to the final status: one status change, one webhook, in a predictable order.
	// The processing step can be produced with POST /_sandbox/payments/{trackingId}/status.
	n, targets := s.state.changeStatusLocked(p, outcome)
	redirect := p.redirectURL
	paymentID, pageID := p.id, p.pageID
	s.mu.Unlock()
	s.sendWebhooks(n, targets)

	if redirect == "" {
		http.Redirect(w, r, "/pay/"+pageID, http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, returnURL(redirect, paymentID, pageID, outcome), http.StatusSeeOther)
}

// returnURL is the merchant's redirectUrl with the hints Bead's page adds. They are hints only:
// a merchant must confirm the status with the API.
func returnURL(redirect, paymentID, pageID, status string) string {
	u, err := url.Parse(redirect)
	if err != nil {
		return redirect
	}
	q := u.Query()
	q.Set("paymentId", paymentID)
	q.Set("paymentPageId", pageID)
	q.Set("statusCode", status)
	u.RawQuery = q.Encode()
	return u.String()
}

func viewOf(p *payment) pageView {
	v := pageView{
		PageID:       p.pageID,
		MerchantName: p.terminal.MerchantName,
		Terminal:     p.terminal.Label,
		Amount:       "$" + p.amount.StringFixed(2) + " USD",
		Reference:    p.reference,
		Description:  p.description,
		Status:       p.status,
		Final:        isFinal(p.status),
		Outcomes:     pageOutcomes,
	}
	if v.Reference == "" {
		v.Reference = "(none)"
	}
	if p.redirectURL != "" {
		v.ReturnURL = returnURL(p.redirectURL, p.id, p.pageID, p.status)
	}
	return v
}

func renderPage(w http.ResponseWriter, status int, v pageView) {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, v); err != nil {
		http.Error(w, "render: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.Header().Set("Cache-Control", "no-store")
	writeBody(w, status, "text/html; charset=utf-8", buf.Bytes())
}
