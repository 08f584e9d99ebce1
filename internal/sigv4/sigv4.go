// Package sigv4 verifies AWS Signature Version 4 signatures: the
// Authorization header AWS SDKs and the CLI send with every API request, and
// presigned URLs (the X-Amz-* query parameters), which is also what MSK's IAM
// SASL tokens are. Verification recomputes the signature from the request
// and the secret the caller's access key names, and compares in constant time.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
	"time"
)

// Algorithm is the only signing algorithm accepted.
const Algorithm = "AWS4-HMAC-SHA256"

// TimeFormat is the layout of X-Amz-Date.
const TimeFormat = "20060102T150405Z"

// EmptyHash is the hex SHA-256 of an empty payload.
const EmptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// Error is an authentication failure. Code is the AWS error code clients
// expect (InvalidSignatureException, UnrecognizedClientException, ...);
// every such failure is answered with HTTP 403.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// The AWS error codes Verify returns.
const (
	CodeMissingToken       = "MissingAuthenticationTokenException"
	CodeIncomplete         = "IncompleteSignatureException"
	CodeInvalidSignature   = "InvalidSignatureException"
	CodeUnrecognizedClient = "UnrecognizedClientException"
)

// SigningKey derives the key that signs requests for one day, region and
// service from a secret access key.
func SigningKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

// StringToSign builds the string a signature covers.
func StringToSign(t time.Time, scope, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return Algorithm + "\n" + t.UTC().Format(TimeFormat) + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

// Signature returns the hex signature of stringToSign under key.
func Signature(key []byte, stringToSign string) string {
	return hex.EncodeToString(hmacSHA256(key, stringToSign))
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// CanonicalRequest is the input to a SigV4 signature, built from the request
// as it travelled.
type CanonicalRequest struct {
	Method string
	// EscapedPath is the path as sent on the wire (percent-encoded once).
	// It is encoded once more, as every AWS service but S3 signs it.
	EscapedPath string
	// Query holds the decoded query parameters that are signed.
	Query map[string][]string
	// Headers holds the values of each signed header, by lower-case name.
	Headers       map[string][]string
	SignedHeaders []string // lower-case, sorted
	PayloadHash   string
}

// String renders c in the canonical form.
func (c CanonicalRequest) String() string {
	var b strings.Builder
	b.WriteString(c.Method)
	b.WriteByte('\n')
	path := c.EscapedPath
	if path == "" {
		path = "/"
	}
	b.WriteString(Escape(path, false))
	b.WriteByte('\n')
	b.WriteString(CanonicalQuery(c.Query))
	b.WriteByte('\n')
	for _, h := range c.SignedHeaders {
		b.WriteString(h)
		b.WriteByte(':')
		vals := make([]string, len(c.Headers[h]))
		for i, v := range c.Headers[h] {
			vals[i] = strings.Join(strings.Fields(v), " ")
		}
		b.WriteString(strings.Join(vals, ","))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(c.SignedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(c.PayloadHash)
	return b.String()
}

// CanonicalQuery encodes query parameters as SigV4 signs them: names and
// values RFC 3986-encoded, sorted by name and then value.
func CanonicalQuery(q map[string][]string) string {
	type kv struct{ k, v string }
	var pairs []kv
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, kv{Escape(k, true), Escape(v, true)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

// Escape percent-encodes every byte of s except the unreserved characters
// A-Z a-z 0-9 - _ . ~, and also '/' unless slash is true.
func Escape(s string, slash bool) string {
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && !slash) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&15])
	}
	return b.String()
}
