package bff

import (
	"context"
	"testing"
	"time"

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
