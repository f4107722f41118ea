package diagnose_test

import (
	"net/http"
	"testing"

	"beadbff/bff/bead"
	"beadbff/bff/diagnose"
)

// What the server's payment index says of a payment read (Resource.TrackingIndexed) decides with the
// probe. Before the server read its index, a payment this terminal had created and Bead refused while
// accepting the token on GET /currencies was put down to "most likely another terminal's" (the index
// rules that out), and the checklist's resource step said the payment's terminal was unknown.
func TestPaymentIndexInTheDiagnosis(t *testing.T) {
	const id = "c10b29e3c8104e0f8dc139c20d9eeb6c"
	refusedRead := func(c map[string]any, r diagnose.Resource) diagnose.Incident {
		in := paymentIncident(diagnose.OpTracking, c, trackingReq(id), http.StatusForbidden, beadHeaders(), bead.ShapeProblem, problem403)
		in.Probe = diagnose.NewProbeResult(nil) // GET /currencies worked
		in.Resource = r
		return in
	}
	tests := []struct {
		name        string
		in          diagnose.Incident
		cause, conf string
		evidence    ev // one of the diagnosis's evidence rows
		resource    string
	}{
		{name: "this terminal created it through this server: not another terminal's",
			in:    refusedRead(claims(), diagnose.Resource{TrackingOwner: terminal1, TrackingIndexed: true}),
			cause: diagnose.CauseUnknown, conf: diagnose.ConfidenceLow,
			evidence: ev{"payment " + id + " was created through this server by terminal " + terminal1, "payment index"},
			resource: diagnose.CheckPassed},
		{name: "not in this terminal's index: the probe's inference stands, with the index beside it",
			in:    refusedRead(claims(), diagnose.Resource{TrackingIndexed: true}),
			cause: diagnose.CauseTerminalMismatch, conf: diagnose.ConfidenceMedium,
			evidence: ev{"payment " + id + " is not among the payments terminal " + terminal1 +
				" created through this server: it may be another terminal's, made without this server, or expired from the index", "payment index"},
			resource: diagnose.CheckNotApplicable},
		{name: "the session's payment read with another terminal's token",
			in: refusedRead(claims(func(c map[string]any) { c["terminalId"], c["merchantId"] = terminal2, merchant2 }),
				diagnose.Resource{TrackingOwner: terminal1, TrackingIndexed: true}),
			cause: diagnose.CauseTerminalMismatch, conf: diagnose.ConfidenceHigh,
			evidence: ev{"payment " + id + " was created by terminal " + terminal1 + "; the token's terminal is " + terminal2, "payment index vs token claim terminalId"},
			resource: diagnose.CheckFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := diagnose.Diagnose(tt.in)
			if d.Cause != tt.cause || d.Confidence != tt.conf {
				t.Errorf("cause %s (%s), want %s (%s)\n%s", d.Cause, d.Confidence, tt.cause, tt.conf, dump(t, d))
			}
			if !hasEvidence(d, tt.evidence) {
				t.Errorf("no evidence %q [%s]\n%s", tt.evidence.Fact, tt.evidence.Source, dump(t, d))
			}
			if got := checkStatus(d, diagnose.CheckResource); got != tt.resource {
				t.Errorf("resource check %s, want %s\n%s", got, tt.resource, dump(t, d))
			}
		})
	}
}
