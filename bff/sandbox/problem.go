package sandbox

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// problemDetails is ASP.NET Core's ProblemDetails / ValidationProblemDetails, with its field
// order (type, title, status, detail, errors, traceId).
type problemDetails struct {
	Type    string              `json:"type"`
	Title   string              `json:"title"`
	Status  int                 `json:"status"`
	Detail  string              `json:"detail,omitempty"`
	Errors  map[string][]string `json:"errors,omitempty"`
	TraceID string              `json:"traceId"`
}

// problemTypes are the type URIs ASP.NET Core 8 writes for each status.
var problemTypes = map[int]struct{ uri, title string }{
	http.StatusBadRequest:            {"https://tools.ietf.org/html/rfc9110#section-15.5.1", "Bad Request"},
	http.StatusForbidden:             {"https://tools.ietf.org/html/rfc9110#section-15.5.4", "Forbidden"},
	http.StatusNotFound:              {"https://tools.ietf.org/html/rfc9110#section-15.5.5", "Not Found"},
	http.StatusRequestEntityTooLarge: {"https://tools.ietf.org/html/rfc9110#section-15.5.14", "Payload Too Large"},
	http.StatusUnsupportedMediaType:  {"https://tools.ietf.org/html/rfc9110#section-15.5.16", "Unsupported Media Type"},
	http.StatusInternalServerError:   {"https://tools.ietf.org/html/rfc9110#section-15.6.1", "An error occurred while processing your request."},
}

const problemContentType = "application/problem+json; charset=utf-8"

// writeProblem answers a ProblemDetails body for status.
func writeProblem(w http.ResponseWriter, status int) {
	t := problemTypes[status]
	writeJSON(w, status, problemContentType, problemDetails{Type: t.uri, Title: t.title, Status: status, TraceID: newTraceID()})
}

// validationErrors collects model-validation messages by field, as ModelState does.
type validationErrors map[string][]string

func (v validationErrors) add(field, message string) { v[field] = append(v[field], message) }

// writeValidationProblem answers ASP.NET's automatic 400 for an invalid model.
func writeValidationProblem(w http.ResponseWriter, errs validationErrors) {
	writeJSON(w, http.StatusBadRequest, problemContentType, problemDetails{
		Type:    problemTypes[http.StatusBadRequest].uri,
		Title:   "One or more validation errors occurred.",
		Status:  http.StatusBadRequest,
		Errors:  errs,
		TraceID: newTraceID(),
	})
}

// writeJSON marshals v and writes it with status and contentType.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Every value written here is built by this package from plain types.
		http.Error(w, "marshal: "+err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, status, contentType, body)
}

func writeBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// statusRecorder remembers the status a handler answered, for the statistics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// code is the answered status; a handler that wrote nothing answered 200.
func (r *statusRecorder) code() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
