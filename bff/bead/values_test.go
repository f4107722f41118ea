package bead

import (
	"errors"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

func TestValidID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		want bool
	}{
		{"sandbox tracking id, 32 hex", "c10b29e3c8104e0f8dc139c20d9eeb6c", true},
		{"mongo object id, 24 hex", "6539fa89f0363f1722b377ef", true},
		{"prefixed id", "term_AB-12", true},
		{"one character", "a", true},
		{"64 characters", strings.Repeat("a", 64), true},
		{"empty", "", false},
		{"65 characters", strings.Repeat("a", 65), false},
		{"path traversal to another endpoint", "../payments/crypto", false},
		{"slash", "a/b", false},
		{"escaped slash", "a%2Fb", false},
		{"dot", ".", false},
		{"space", "a b", false},
		{"query", "a?b=c", false},
		{"non-ASCII letter", "abcé", false},
		{"newline", "abc\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidID(tt.id); got != tt.want {
				t.Errorf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

func TestParseAmount(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // FormatAmount of the result; "" when an error is expected
	}{
		{"cents kept", "12.50", "12.50"},
		{"one decimal", "12.5", "12.50"},
		{"whole", "12", "12.00"},
		{"below one", "0.10", "0.10"},
		{"JSON string form", `"7.00"`, "7.00"},
		{"surrounding space", " 3.25 ", "3.25"},
		{"at the maximum", "999999999.99", "999999999.99"},
		{"zero", "0", ""},
		{"zero with cents", "0.00", ""},
		{"negative", "-1", ""},
		{"plus sign", "+1", ""},
		{"exponent", "1e3", ""},
		{"three decimals refused, not rounded", "12.505", ""},
		{"thousands separator", "1,000.00", ""},
		{"leading zero", "012", ""},
		{"no whole part", ".5", ""},
		{"trailing dot", "5.", ""},
		{"not a number", "NaN", ""},
		{"above the maximum", "1000000000", ""},
		{"empty", "", ""},
		{"empty JSON string", `""`, ""},
		{"words", "twelve", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAmount(tt.in)
			if tt.want == "" {
				if !errors.Is(err, ErrInvalidAmount) {
					t.Fatalf("ParseAmount(%q) = %s, %v; want ErrInvalidAmount", tt.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAmount(%q): %v", tt.in, err)
			}
			if s := FormatAmount(got); s != tt.want {
				t.Errorf("ParseAmount(%q) = %s, want %s", tt.in, s, tt.want)
			}
		})
	}
}

// Every amount reads with at least two decimals (a new-user walkthrough saw "0.1 USD" next to
// "12.50 USD"), and no digit a payment currency has is dropped.
func TestFormatAmountKeepsDigits(t *testing.T) {
	tests := []struct {
		name string
		in   decimal.Decimal
		want string
	}{
		{"trailing zero kept", mustDecimal(t, "12.50"), "12.50"},
		{"leading zero kept", mustDecimal(t, "0.10"), "0.10"},
		{"large", mustDecimal(t, "12345678.99"), "12345678.99"},
		{"whole", decimal.NewFromInt(10), "10.00"},
		{"positive exponent", decimal.New(15, 1), "150.00"},
		{"one decimal from Bead's JSON 0.1", mustDecimal(t, "0.1"), "0.10"},
		{"a payment currency's six decimals", mustDecimal(t, "0.000123"), "0.000123"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatAmount(tt.in); got != tt.want {
				t.Errorf("FormatAmount = %q, want %q", got, tt.want)
			}
		})
	}
}
