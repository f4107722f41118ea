package bead

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name        string
		raw         string
		want        Status
		wantUnknown bool // the error wraps ErrUnknownStatus
		wantErr     bool
	}{
		{"lower case word", `"completed"`, StatusCompleted, false, false},
		{"capitalised word", `"Completed"`, StatusCompleted, false, false},
		{"upper case word", `"COMPLETED"`, StatusCompleted, false, false},
		{"created", `"created"`, StatusCreated, false, false},
		{"processing", `"Processing"`, StatusProcessing, false, false},
		{"underpaid", `"UNDERPAID"`, StatusUnderpaid, false, false},
		{"overpaid", `"overPaid"`, StatusOverpaid, false, false},
		{"expired", `"Expired"`, StatusExpired, false, false},
		{"invalid", `"invalid"`, StatusInvalid, false, false},
		{"cancelled", `"Cancelled"`, StatusCancelled, false, false},
		{"American spelling", `"canceled"`, StatusCancelled, false, false},
		{"camel case reserved word", `"fullyRefunded"`, StatusFullyRefunded, false, false},
		{"snake case reserved word", `"PARTIALLY_REFUNDED"`, StatusPartiallyRefunded, false, false},
		{"legacy 0 (assumed created)", `0`, StatusCreated, false, false},
		{"legacy 1 (assumed processing)", `1`, StatusProcessing, false, false},
		{"legacy 2", `2`, StatusCompleted, false, false},
		{"legacy 3", `3`, StatusUnderpaid, false, false},
		{"legacy 4", `4`, StatusOverpaid, false, false},
		{"legacy 7", `7`, StatusExpired, false, false},
		{"legacy 8", `8`, StatusInvalid, false, false},
		{"legacy 9", `9`, StatusCancelled, false, false},
		{"legacy number in a string", `"2"`, StatusCompleted, false, false},
		{"legacy number with spaces", ` 9 `, StatusCancelled, false, false},
		{"undocumented legacy number", `5`, "", true, false},
		{"undocumented word kept", `"Refunding"`, "refunding", true, false},
		{"markup is not a word", `"<script>"`, "", true, false},
		{"null", `null`, "", false, true},
		{"absent", ``, "", false, true},
		{"object", `{"code":2}`, "", false, true},
		{"fraction", `2.5`, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatus(json.RawMessage(tt.raw))
			if got != tt.want {
				t.Errorf("ParseStatus(%s) = %q, want %q", tt.raw, got, tt.want)
			}
			switch {
			case tt.wantUnknown && !errors.Is(err, ErrUnknownStatus):
				t.Errorf("error = %v, want ErrUnknownStatus", err)
			case tt.wantErr && (err == nil || errors.Is(err, ErrUnknownStatus)):
				t.Errorf("error = %v, want a malformed-status error", err)
			case !tt.wantUnknown && !tt.wantErr && err != nil:
				t.Errorf("error = %v, want none", err)
			}
		})
	}
}

func TestStatusMeaning(t *testing.T) {
	tests := []struct {
		status Status
		final  bool
		paid   bool
		label  string
	}{
		{StatusCreated, false, false, "Waiting for payment"},
		{StatusProcessing, false, false, "Payment in progress"},
		{StatusCompleted, true, true, "Paid"},
		{StatusOverpaid, true, true, "Paid (overpaid)"},
		{StatusUnderpaid, true, false, "Underpaid (not accepted)"},
		{StatusExpired, true, false, "Expired"},
		{StatusInvalid, true, false, "Invalid"},
		{StatusCancelled, true, false, "Cancelled"},
		{StatusFullyRefunded, true, false, "Refunded"},
		{StatusPartiallyRefunded, true, false, "Partially refunded"},
		{"refunding", false, false, "Unknown status (refunding)"},
		{"", false, false, "Unknown"},
	}
	for _, tt := range tests {
		t.Run(string(tt.status), func(t *testing.T) {
			if got := tt.status.Final(); got != tt.final {
				t.Errorf("Final() = %v, want %v", got, tt.final)
			}
			if got := tt.status.Paid(); got != tt.paid {
				t.Errorf("Paid() = %v, want %v", got, tt.paid)
			}
			if got := tt.status.Label(); got != tt.label {
				t.Errorf("Label() = %q, want %q", got, tt.label)
			}
		})
	}
}
