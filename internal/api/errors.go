package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/fjord-io/fjord/internal/cluster"
	"github.com/fjord-io/fjord/internal/sigv4"
)

// errorBody is the body of every MSK error shape.
type errorBody struct {
	Message          string `json:"message"`
	InvalidParameter string `json:"invalidParameter,omitempty"`
}

// writeError is the one place an error becomes an HTTP response. The status,
// the x-amzn-ErrorType header (which the AWS SDKs and CLI read to name the
// exception) and the message follow MSK:
//
//	*sigv4.Error                   403, its own code (InvalidSignatureException, ...)
//	cluster.Invalid, Unsupported   400 BadRequestException
//	cluster.NotFound               404 NotFoundException
//	cluster.Conflict               409 ConflictException
//	anything else                  500 InternalServerErrorException, logged
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, reqID, op string, err error) {
	var (
		status = http.StatusInternalServerError
		code   = "InternalServerErrorException"
		body   = errorBody{Message: "Fjord hit an internal error; request ID " + reqID + " identifies it in the server log."}
		se     *sigv4.Error
		ce     *cluster.Error
	)
	switch {
	case errors.As(err, &se):
		status, code, body.Message = http.StatusForbidden, se.Code, se.Message
	case errors.As(err, &ce):
		body.Message, body.InvalidParameter = ce.Message, ce.Field
		switch ce.Kind {
		case cluster.NotFound:
			status, code = http.StatusNotFound, "NotFoundException"
		case cluster.Conflict:
			status, code = http.StatusConflict, "ConflictException"
		default:
			status, code = http.StatusBadRequest, "BadRequestException"
		}
	}
	level := h.cfg.Log.Info
	if status == http.StatusInternalServerError {
		level = h.cfg.Log.Error
	}
	level("request failed", "op", op, "method", r.Method, "path", r.URL.EscapedPath(), "status", status, "code", code, "request_id", reqID, "err", err)
	w.Header().Set("X-Amzn-ErrorType", code)
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		w.Header().Set("X-Amzn-ErrorType", "InternalServerErrorException")
		b = []byte(`{"message":"Fjord could not encode its response."}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}
