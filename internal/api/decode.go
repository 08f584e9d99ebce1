package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/fjord-io/fjord/internal/cluster"
	"github.com/fjord-io/fjord/internal/store"
)

// decode reads the JSON body of req into v. Members v does not declare are
// refused: every member of the MSK model is declared, so an unknown one is a
// typo or something no MSK version has.
func decode(req *request, v any) error {
	body, err := io.ReadAll(req.http.Body)
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	var be base64.CorruptInputError
	switch {
	case errors.As(err, &te):
		field := strings.ReplaceAll(te.Field, "provisionedRequest.", "") // the embedded struct's name is not on the wire
		return cluster.Invalidf(field, "%s must be %s, not a JSON %s", field, jsonKind(te.Type.String()), te.Value)
	case errors.As(err, &se):
		return cluster.Invalidf("", "the request body is not valid JSON (at byte %d): %v", se.Offset, err)
	case errors.As(err, &be):
		return cluster.Invalidf("serverProperties", "serverProperties must be the base64 encoding of the server.properties text: %v", err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return cluster.Invalidf(name, "%s is not a member of the %s request; check its spelling against the MSK API", name, req.op)
	}
	return cluster.Invalidf("", "the request body cannot be read as %s input: %v", req.op, err)
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "float"), strings.HasPrefix(goType, "*int"):
		return "a number"
	case strings.Contains(goType, "bool"):
		return "true or false"
	case strings.Contains(goType, "string"):
		if strings.HasPrefix(goType, "map") {
			return "an object of strings"
		}
		if strings.HasPrefix(goType, "[]") {
			return "a list of strings"
		}
		return "a string"
	case strings.HasPrefix(goType, "[]uint8"):
		return "a base64 string"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	}
	return "an object"
}

// page reads maxResults and nextToken from the query string.
func page(req *request) (store.Page, error) {
	q := req.http.URL.Query()
	p := store.Page{NextToken: q.Get("nextToken")}
	if s := q.Get("maxResults"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return p, cluster.Invalidf("maxResults", "maxResults must be a number from 1 to 100, not %q", s)
		}
		p.MaxResults = n
	}
	return p, nil
}

// pageSlice returns one page of items, with an offset as its token.
func pageSlice[T any](items []T, p store.Page) ([]T, string, error) {
	off := 0
	if p.NextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(p.NextToken)
		s, ok := strings.CutPrefix(string(b), "o1:")
		n, perr := strconv.Atoi(s)
		if err != nil || !ok || perr != nil || n < 0 || n > len(items) {
			return nil, "", cluster.Invalidf("nextToken", "nextToken %q is not a token this API returned; omit it to start from the first page", p.NextToken)
		}
		off = n
	}
	limit := p.MaxResults
	if limit <= 0 {
		limit = store.DefaultMaxResults
	}
	end := min(off+limit, len(items))
	next := ""
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString([]byte("o1:" + strconv.Itoa(end)))
	}
	return items[off:end], next, nil
}
