package simadmin

import (
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// maxBody bounds an admin request: a fault or a clock step is small.
const maxBody = 4096

// Decode reads r's body, one JSON object whose fields v knows, into v. On
// error it answers 400 and returns false.
func Decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

// Delay sets *d from the delay text of a posted fault ("2s"; "" leaves *d
// alone). On error it answers 400 and returns false.
func Delay(w http.ResponseWriter, text string, d *time.Duration) bool {
	if text == "" {
		return true
	}
	v, err := time.ParseDuration(text)
	if err != nil {
		http.Error(w, "bad delay: "+err.Error(), http.StatusBadRequest)
		return false
	}
	*d = v
	return true
}
