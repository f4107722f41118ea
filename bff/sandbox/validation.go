package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"reflect"
	"strings"

	"github.com/shopspring/decimal"
)

// This file reads JSON request bodies the way an ASP.NET Core [ApiController] does: 415 for a
// body that is not JSON, ValidationProblemDetails keyed "$.field" for JSON that does not fit the
// model, and keyed by property name ("RequestedAmount") for values that break a rule.

// createPaymentRequest is the body of POST /payments/crypto. encoding/json matches names
// case-insensitively, as System.Text.Json's web defaults do.
type createPaymentRequest struct {
	TerminalID      string           `json:"terminalId"`
	MerchantID      string           `json:"merchantId"`
	RequestedAmount decimalNumber    `json:"requestedAmount"`
	PaymentURLType  paymentURLType   `json:"paymentUrlType"`
	Reference       string           `json:"reference"`
	Description     string           `json:"description"`
	RedirectURL     string           `json:"redirectUrl"`
	Customer        *customerRequest `json:"customer"`
	RefundEmail     string           `json:"refundEmail"`
	EmailReceipt    bool             `json:"emailReceipt"`
	SMSReceipt      bool             `json:"smsReceipt"`
	WebhookURLs     []string         `json:"webhookUrls"`
	TenderTypes     []string         `json:"tenderTypes"`
	CartItems       json.RawMessage  `json:"cartItems"`
}

type customerRequest struct {
	Email       string `json:"email"`
	FirstName   string `json:"firstName"`
	LastName    string `json:"lastName"`
	Address     string `json:"address"`
	Address2    string `json:"address2"`
	City        string `json:"city"`
	State       string `json:"state"`
	CountryCode string `json:"countryCode"`
	PostalCode  string `json:"postalCode"`
}

// decimalNumber is a JSON number read straight into a decimal. A string ("12.50") is refused as
// System.Text.Json refuses it for a decimal property: Bead documents a number, and a client that
// sends a string should find out here rather than in production.
type decimalNumber struct {
	set   bool
	value decimal.Decimal
}

var decimalType = reflect.TypeFor[decimal.Decimal]()

func (d *decimalNumber) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) == 0 || b[0] == '"' || b[0] == '{' || b[0] == '[' || b[0] == 't' || b[0] == 'f' {
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: decimalType}
	}
	v, err := decimal.NewFromString(string(b))
	if err != nil {
		return &json.UnmarshalTypeError{Value: "number " + string(b), Type: decimalType}
	}
	d.set, d.value = true, v
	return nil
}

// paymentURLType is Bead's PaymentUrlType enum: "web" in any case, or its number 0.
type paymentURLType struct{}

var paymentURLTypeType = reflect.TypeFor[paymentURLType]()

func (paymentURLType) UnmarshalJSON(b []byte) error {
	switch strings.ToLower(string(b)) {
	case "null", `"web"`, "0":
		return nil
	}
	return &json.UnmarshalTypeError{Value: jsonKind(b), Type: paymentURLTypeType}
}

func jsonKind(b []byte) string {
	switch {
	case len(b) == 0:
		return "empty"
	case b[0] == '"':
		return "string"
	case b[0] == '{':
		return "object"
	case b[0] == '[':
		return "array"
	case b[0] == 't' || b[0] == 'f':
		return "bool"
	}
	return "number"
}

// dotnetTypeNames name Go types as the .NET types of Bead's model in conversion messages.
var dotnetTypeNames = map[reflect.Type]string{
	decimalType:                        "System.Decimal",
	paymentURLTypeType:                 "Bead.Payments.Api.Models.PaymentUrlType",
	reflect.TypeFor[customerRequest](): "Bead.Payments.Api.Models.Customer",
	reflect.TypeFor[string]():          "System.String",
	reflect.TypeFor[bool]():            "System.Boolean",
	reflect.TypeFor[[]string]():        "System.Collections.Generic.List`1[System.String]",
}

const maxRequestBody = 64 << 10

// decodeJSONBody reads r's body into v. On failure it has answered and returns false.
func decodeJSONBody(w http.ResponseWriter, r *http.Request, v any) bool {
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType != "application/json" && mediaType != "text/json" && !strings.HasSuffix(mediaType, "+json") {
		writeProblem(w, http.StatusUnsupportedMediaType)
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
		writeProblem(w, http.StatusRequestEntityTooLarge)
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		writeValidationProblem(w, validationErrors{"": {"A non-empty request body is required."}})
		return false
	}
	err = json.Unmarshal(body, v)
	if err == nil {
		return true
	}
	// The model binder reports the JSON path and position, plus a "request" entry because
	// the action's body parameter ends up null.
	errs := validationErrors{"request": {"The request field is required."}}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		path := "$"
		if te.Field != "" {
			path += "." + te.Field
		}
		typeName := dotnetTypeNames[te.Type]
		if typeName == "" {
			typeName = te.Type.String()
		}
		where := "Path: " + path
		if te.Offset > 0 { // the decimal and enum readers cannot know their offset
			where += " | " + position(body, te.Offset)
		}
		errs.add(path, fmt.Sprintf("The JSON value could not be converted to %s. %s.", typeName, where))
	} else {
		offset := int64(len(body))
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			offset = se.Offset
		}
		errs.add("$", fmt.Sprintf("The JSON document is not valid: %s. Path: $ | %s.", err.Error(), position(body, offset)))
	}
	writeValidationProblem(w, errs)
	return false
}

// position renders a byte offset as System.Text.Json does: zero-based line and byte in line.
func position(body []byte, offset int64) string {
	offset = min(max(offset, 0), int64(len(body)))
	before := body[:offset]
	line := bytes.Count(before, []byte("\n"))
	col := int64(len(before)) - int64(bytes.LastIndexByte(before, '\n')) - 1
	return fmt.Sprintf("LineNumber: %d | BytePositionInLine: %d", line, col)
}

// Limits the sandbox enforces where Bead documents none; chosen to look like DataAnnotations.
const (
	maxReference   = 100
	maxDescription = 500
)

var (
	minAmount = decimal.RequireFromString("0.01")
	maxAmount = decimal.NewFromInt(1_000_000)
)

// tenderTypes are the documented values of tenderTypes[]; they are case-sensitive.
var tenderTypes = []string{"bitcoin", "lightning", "ethereum", "usdC_Polygon", "usdcBase", "usdcEthereum", "usdcSolana", "alipay", "paypal", "venmo", "klarna"}

// validate applies the model's rules, as DataAnnotations would, and returns every problem.
func (req *createPaymentRequest) validate() validationErrors {
	errs := validationErrors{}
	required := func(field, value string) {
		if strings.TrimSpace(value) == "" {
			errs.add(field, fmt.Sprintf("The %s field is required.", field[strings.LastIndexByte(field, '.')+1:]))
		}
	}
	maxLength := func(field, value string, n int) {
		if len(value) > n {
			errs.add(field, fmt.Sprintf("The field %s must be a string or array type with a maximum length of '%d'.", field, n))
		}
	}
	absoluteURL := func(field, value string) {
		if value != "" && !isAbsoluteHTTPURL(value) {
			errs.add(field, fmt.Sprintf("The %s field is not a valid fully-qualified http, https, or ftp URL.", field))
		}
	}
	email := func(field, value string) {
		if value == "" {
			return
		}
		if a, err := mail.ParseAddress(value); err != nil || a.Address != value {
			errs.add(field, fmt.Sprintf("The %s field is not a valid e-mail address.", field[strings.LastIndexByte(field, '.')+1:]))
		}
	}

	required("TerminalId", req.TerminalID)
	required("MerchantId", req.MerchantID)
	switch amount := req.RequestedAmount; {
	case !amount.set:
		errs.add("RequestedAmount", "The RequestedAmount field is required.")
	case amount.value.LessThan(minAmount) || amount.value.GreaterThan(maxAmount):
		errs.add("RequestedAmount", fmt.Sprintf("The field RequestedAmount must be between %s and %s.", minAmount, maxAmount))
	case !amount.value.Equal(amount.value.Round(2)):
		errs.add("RequestedAmount", "The field RequestedAmount must have no more than 2 decimal places.")
	}
	maxLength("Reference", req.Reference, maxReference)
	maxLength("Description", req.Description, maxDescription)
	absoluteURL("RedirectUrl", req.RedirectURL)
	email("RefundEmail", req.RefundEmail)
	for i, u := range req.WebhookURLs {
		absoluteURL(fmt.Sprintf("WebhookUrls[%d]", i), u)
	}
	for i, t := range req.TenderTypes {
		known := false
		for _, k := range tenderTypes {
			known = known || k == t
		}
		if !known {
			errs.add(fmt.Sprintf("TenderTypes[%d]", i), fmt.Sprintf("'%s' is not a supported tender type.", t))
		}
	}
	// Bead: once a customer object is sent, all of it is required except address2.
	if c := req.Customer; c != nil {
		required("Customer.Email", c.Email)
		email("Customer.Email", c.Email)
		required("Customer.FirstName", c.FirstName)
		required("Customer.LastName", c.LastName)
		required("Customer.Address", c.Address)
		required("Customer.City", c.City)
		required("Customer.State", c.State)
		required("Customer.CountryCode", c.CountryCode)
		required("Customer.PostalCode", c.PostalCode)
	}
	return errs
}
