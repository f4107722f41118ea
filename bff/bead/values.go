package bead

import (
	"fmt"
	"strings"

	"github.com/shopspring/decimal"
)

// maxIDLen bounds an opaque Bead id. Bead's ids seen so far are 24 or 32 hex characters, or short
// prefixed words (term_…); 64 leaves room without letting a caller smuggle a long string into a path.
const maxIDLen = 64

// ValidID reports whether id has the shape an opaque Bead id may have here: 1 to 64 characters of
// [A-Za-z0-9_-]. Every id that goes into a URL path passes this check first, so that no input such as
// "../payments/crypto" or "a/b" can make the client call another endpoint than the one meant.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// maxAmount (999,999,999.99) is the largest amount this product asks Bead for, in major units. Bead
// documents no limit; the cap is there so that a typo or a unit mistake (cents sent as dollars, a pasted
// card number) is refused here rather than turned into a payment page.
var maxAmount = decimal.RequireFromString("999999999.99")

// maxAmountDecimals is the number of fractional digits an amount may have. Bead settles in USD (CAD is
// "pending"), whose smallest unit is the cent; a third digit is a mistake, so it is refused rather than
// rounded, because silently changing what a merchant typed is worse than asking again.
const maxAmountDecimals = 2

// ParseAmount reads an amount a person or a front end gave in major units: "12.50", "12.5", "12", or the
// same wrapped in JSON quotes (so that a JSON string or a JSON number's raw text can be passed as is).
// It accepts only plain digits with an optional fraction: no sign, exponent, thousands separator or
// leading zeros, and at most two fractional digits. The amount must be positive and at most 999,999,999.99.
// No digit is lost ("12.50" stays 12.50, see FormatAmount); no float is ever involved.
func ParseAmount(s string) (decimal.Decimal, error) {
	text := strings.TrimSpace(s)
	if len(text) >= 2 && text[0] == '"' && text[len(text)-1] == '"' {
		text = strings.TrimSpace(text[1 : len(text)-1])
	}
	if !plainDecimal(text) {
		return decimal.Decimal{}, fmt.Errorf("%w: %q is not a plain decimal number such as 12.50", ErrInvalidAmount, shorten(text, 32))
	}
	d, err := decimal.NewFromString(text)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("%w: %v", ErrInvalidAmount, err)
	}
	if err := checkAmount(d); err != nil {
		return decimal.Decimal{}, err
	}
	return d, nil
}

// plainDecimal reports whether s is digits with an optional fraction, the grammar of a JSON number
// without sign or exponent, and at most maxAmountDecimals fractional digits.
func plainDecimal(s string) bool {
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" || (len(whole) > 1 && whole[0] == '0') || !allDigits(whole) {
		return false
	}
	if hasFrac && (frac == "" || len(frac) > maxAmountDecimals || !allDigits(frac)) {
		return false
	}
	return true
}

// checkAmount is the rule every requested amount obeys, however it was made.
func checkAmount(d decimal.Decimal) error {
	switch {
	case !d.IsPositive():
		return fmt.Errorf("%w: must be more than zero", ErrInvalidAmount)
	case d.GreaterThan(maxAmount):
		return fmt.Errorf("%w: more than %s", ErrInvalidAmount, maxAmount.StringFixed(maxAmountDecimals))
	case !d.Equal(d.Truncate(maxAmountDecimals)):
		return fmt.Errorf("%w: at most %d decimal places", ErrInvalidAmount, maxAmountDecimals)
	}
	return nil
}

// FormatAmount writes an amount of money with at least two fractional digits, more when it has them:
// 12.50 parsed from "12.50" gives "12.50", 12 and 12.5 give "12.00" and "12.50", Bead's 0.1 gives "0.10",
// and a payment currency's 0.000123 stays "0.000123". So every amount on a page or in the API reads
// alike (decimal's own String would show "12.5" for what was typed as 12.50).
func FormatAmount(d decimal.Decimal) string {
	return d.StringFixed(max(2, -d.Exponent()))
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
