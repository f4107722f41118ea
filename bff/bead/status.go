package bead

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// legacyStatus maps the numeric status codes of Bead's older API (removed in May 2025, see bead-api.md
// §2) to the words. 0 and 1 are not documented; they are assumed to be created and processing because
// the documented numbers follow the order of the words and those two are the only words left before 2.
var legacyStatus = map[int64]Status{
	0: StatusCreated,
	1: StatusProcessing,
	2: StatusCompleted,
	3: StatusUnderpaid,
	4: StatusOverpaid,
	7: StatusExpired,
	8: StatusInvalid,
	9: StatusCancelled,
}

var knownStatus = map[Status]bool{
	StatusCreated: true, StatusProcessing: true, StatusCompleted: true, StatusUnderpaid: true,
	StatusOverpaid: true, StatusExpired: true, StatusInvalid: true, StatusCancelled: true,
	StatusFullyRefunded: true, StatusPartiallyRefunded: true,
}

// ParseStatus reads Bead's statusCode in any form it has been seen in: a word in any case
// ("completed", "Completed", "COMPLETED", "fullyRefunded", "FULLY_REFUNDED"), a legacy number (2), or a
// legacy number in a string ("2"). The American "canceled" is read as cancelled.
//
// A well-formed but unknown word or number gives its normalised form together with an error wrapping
// ErrUnknownStatus, so that a caller can show it while refusing to act on it (an unknown status is
// neither Final nor Paid). Anything else (null, an object, a fraction) gives "" and an error.
func ParseStatus(raw json.RawMessage) (Status, error) {
	s, err := parseStatus(raw)
	if err != nil {
		return s, fmt.Errorf("bead: status: %w", err)
	}
	return s, nil
}

// parseStatus is ParseStatus with errors that do not repeat the "bead:" prefix, for use inside a larger
// answer's error.
func parseStatus(raw json.RawMessage) (Status, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", errors.New("missing")
	}
	if raw[0] == '"' {
		var word string
		if err := json.Unmarshal(raw, &word); err != nil {
			return "", err
		}
		word = strings.TrimSpace(word)
		if allDigits(word) {
			return legacyNumber(word)
		}
		return statusWord(word)
	}
	return legacyNumber(string(raw))
}

func legacyNumber(text string) (Status, error) {
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return "", fmt.Errorf("%q is neither a word nor a whole number", shorten(text, 32))
	}
	if s, ok := legacyStatus[n]; ok {
		return s, nil
	}
	return "", fmt.Errorf("%w: legacy number %d", ErrUnknownStatus, n)
}

func statusWord(word string) (Status, error) {
	norm := strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', ' ':
			return -1
		}
		return r
	}, strings.ToLower(word))
	if norm == "canceled" {
		norm = string(StatusCancelled)
	}
	s := Status(norm)
	if knownStatus[s] {
		return s, nil
	}
	if len(norm) == 0 || len(norm) > 32 || strings.IndexFunc(norm, func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9')
	}) >= 0 {
		// Not a word at all: do not hand a caller arbitrary text to show as a status.
		return "", fmt.Errorf("%w: %q", ErrUnknownStatus, shorten(word, 32))
	}
	return s, fmt.Errorf("%w: %q", ErrUnknownStatus, norm)
}

// Final reports whether the payment will not change any more: every status but created and processing
// (and any status this client does not know, which it keeps watching rather than give up on).
func (s Status) Final() bool {
	switch s {
	case StatusCompleted, StatusUnderpaid, StatusOverpaid, StatusExpired, StatusInvalid, StatusCancelled,
		StatusFullyRefunded, StatusPartiallyRefunded:
		return true
	}
	return false
}

// Paid reports whether the payment fulfils an order: completed, or overpaid (which Bead counts as paid
// from the merchant's side; the excess goes back to the shopper). Underpaid is not paid: Bead does not
// convert the funds and the shopper reclaims them.
func (s Status) Paid() bool {
	return s == StatusCompleted || s == StatusOverpaid
}

// Label is the status in words for staff and shoppers.
func (s Status) Label() string {
	switch s {
	case StatusCreated:
		return "Waiting for payment"
	case StatusProcessing:
		return "Payment in progress"
	case StatusCompleted:
		return "Paid"
	case StatusUnderpaid:
		return "Underpaid (not accepted)"
	case StatusOverpaid:
		return "Paid (overpaid)"
	case StatusExpired:
		return "Expired"
	case StatusInvalid:
		return "Invalid"
	case StatusCancelled:
		return "Cancelled"
	case StatusFullyRefunded:
		return "Refunded"
	case StatusPartiallyRefunded:
		return "Partially refunded"
	case "":
		return "Unknown"
	}
	return "Unknown status (" + string(s) + ")"
}
