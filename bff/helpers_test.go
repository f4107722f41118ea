package bff

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"beadbff/bff/bead"
	"beadbff/session"
)

// seedSession stores a logged-in session of terminal tid whose terminal's token is tok, as a login would
// (a claimed terminal token, the session holding it and of its lineage).
func seedSession(t testing.TB, st session.Store, tid, mid string, tok session.Token) *session.Session {
	t.Helper()
	ctx := context.Background()
	id, err := st.NewID()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cur, _, err := st.ClaimTerminalToken(ctx, session.TerminalToken{TerminalID: tid, MerchantID: mid, Token: tok, Lineage: "lin-" + tid},
		time.Hour, holderName(id), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sess := &session.Session{ID: id, TerminalID: tid, MerchantID: mid, Lineage: cur.Lineage, CSRFToken: "c", CreatedAt: now, LastSeen: now}
	if err := st.Save(ctx, sess, time.Hour); err != nil {
		t.Fatal(err)
	}
	return sess
}

// whoAmI is GET /api/v1/session on srv with the cookie of session id (a request that calls no Bead API);
// it returns the answer's status.
func whoAmI(t testing.TB, srv *Server, id string) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/api/v1/session", nil)
	req.Header.Set("Cookie", srv.cookieName()+"="+id)
	res, err := srv.App().Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// logInAndOutAgain logs a new session in on terminal t1 of realm through srv (a new lineage) and logs it
// out again; it reports whether that logout was the terminal's last holder (the realm session ends, the
// token leaves the store), as it should be when no other session of t1 is alive.
func logInAndOutAgain(t testing.TB, srv *Server, st session.Store, realm *fakeRealm) (lastHolder bool) {
	t.Helper()
	ctx := context.Background()
	id, _ := st.NewID()
	if _, err := srv.claimTerminal(ctx, realm.issue(), bead.Claims{TerminalID: "t1", MerchantID: "m1"}, holderName(id), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	last, err := st.ReleaseTerminal(ctx, "t1", holderName(id))
	if err != nil {
		t.Fatal(err)
	}
	return last != nil
}
