package sigv4

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrUnknownKey is what a SecretFunc returns for an access key it does not know.
var ErrUnknownKey = errors.New("unknown access key")

// SecretFunc returns the secret of an access key, or an error matching
// ErrUnknownKey if there is no such key.
type SecretFunc func(ctx context.Context, accessKeyID string) (string, error)

// DefaultMaxSkew is how far a request's signing time may be from now, as AWS allows.
const DefaultMaxSkew = 15 * time.Minute

// MaxBody is the largest request body Verify reads.
const MaxBody = 8 << 20

// Verifier checks SigV4 signatures for one service in one region.
type Verifier struct {
	Service string // e.g. "kafka"
	Region  string // e.g. "us-east-1"
	Secret  SecretFunc
	MaxSkew time.Duration    // 0 means DefaultMaxSkew
	Now     func() time.Time // nil means time.Now
}

// Identity is who signed a verified request.
type Identity struct {
	AccessKeyID string
	SigningTime time.Time
}

// auth is the parsed signature: from the Authorization header or the query.
type auth struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
	t                                time.Time
	expires                          time.Duration // presigned only
	presigned                        bool
}

// Verify checks the signature of r. It reads the body (at most MaxBody bytes)
// to hash it and replaces r.Body so handlers can read it again. A request
// that fails authentication yields an *Error; other errors are internal.
func (v *Verifier) Verify(ctx context.Context, r *http.Request) (Identity, error) {
	a, err := v.parse(r)
	if err != nil {
		return Identity{}, err
	}
	if err := v.checkScope(a); err != nil {
		return Identity{}, err
	}
	body, err := readBody(r)
	if err != nil {
		return Identity{}, err
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	sum := sha256.Sum256(body)
	computed := hex.EncodeToString(sum[:])
	switch {
	case payload == "":
		payload = computed
	case payload == "UNSIGNED-PAYLOAD":
	case !strings.EqualFold(payload, computed):
		return Identity{}, &Error{CodeInvalidSignature, "The provided 'x-amz-content-sha256' header does not match what was computed: sign the body you send."}
	}

	secret, err := v.Secret(ctx, a.accessKey)
	if errors.Is(err, ErrUnknownKey) {
		return Identity{}, &Error{CodeUnrecognizedClient, "The security token included in the request is invalid: access key " + a.accessKey + " is unknown to this server. Use the root key from DATA_DIR/credentials or one this server issued."}
	}
	if err != nil {
		return Identity{}, fmt.Errorf("look up access key: %w", err)
	}
	if r.Header.Get("X-Amz-Security-Token") != "" || r.URL.Query().Get("X-Amz-Security-Token") != "" {
		return Identity{}, &Error{CodeUnrecognizedClient, "The security token included in the request is invalid: this server issues no session tokens; sign with a long-term access key and unset AWS_SESSION_TOKEN."}
	}

	cr := canonical(r, a, payload)
	sts := StringToSign(a.t, a.date+"/"+a.region+"/"+a.service+"/aws4_request", cr.String())
	want := Signature(SigningKey(secret, a.date, a.region, a.service), sts)
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(a.signature))) {
		return Identity{}, &Error{CodeInvalidSignature, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."}
	}
	return Identity{AccessKeyID: a.accessKey, SigningTime: a.t}, nil
}

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	r.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(body) > MaxBody {
		return nil, &Error{CodeIncomplete, fmt.Sprintf("The request body is larger than %d bytes.", MaxBody)}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}

func (v *Verifier) parse(r *http.Request) (auth, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		return parseHeader(r, h)
	}
	q := r.URL.Query()
	if q.Get("X-Amz-Signature") != "" || q.Get("X-Amz-Algorithm") != "" {
		return parseQuery(q)
	}
	return auth{}, &Error{CodeMissingToken, "Missing Authentication Token: sign the request with SigV4 (service kafka), as the AWS CLI and SDKs do."}
}

func parseHeader(r *http.Request, h string) (auth, error) {
	alg, rest, _ := strings.Cut(h, " ")
	if alg != Algorithm {
		return auth{}, &Error{CodeIncomplete, fmt.Sprintf("Unsupported Authorization algorithm %q: sign with %s.", alg, Algorithm)}
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok {
			fields[k] = val
		}
	}
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		if fields[k] == "" {
			return auth{}, &Error{CodeIncomplete, fmt.Sprintf("Authorization header requires '%s' parameter. Authorization=%s", k, h)}
		}
	}
	a, err := parseCredential(fields["Credential"])
	if err != nil {
		return auth{}, err
	}
	a.signedHeaders = strings.Split(fields["SignedHeaders"], ";")
	a.signature = fields["Signature"]
	date := r.Header.Get("X-Amz-Date")
	if date == "" {
		if d := r.Header.Get("Date"); d != "" {
			t, err := http.ParseTime(d)
			if err != nil {
				return auth{}, &Error{CodeIncomplete, "Date header " + d + " is not an HTTP date."}
			}
			a.t = t.UTC()
		} else {
			return auth{}, &Error{CodeIncomplete, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."}
		}
	} else {
		t, err := time.Parse(TimeFormat, date)
		if err != nil {
			return auth{}, &Error{CodeIncomplete, "X-Amz-Date " + date + " is not in the form 20060102T150405Z."}
		}
		a.t = t
	}
	return a, nil
}

func parseQuery(q url.Values) (auth, error) {
	if alg := q.Get("X-Amz-Algorithm"); alg != Algorithm {
		return auth{}, &Error{CodeIncomplete, fmt.Sprintf("Unsupported X-Amz-Algorithm %q: sign with %s.", alg, Algorithm)}
	}
	for _, k := range []string{"X-Amz-Credential", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Date"} {
		if q.Get(k) == "" {
			return auth{}, &Error{CodeIncomplete, "A presigned request requires the " + k + " query parameter."}
		}
	}
	a, err := parseCredential(q.Get("X-Amz-Credential"))
	if err != nil {
		return auth{}, err
	}
	a.presigned = true
	a.signedHeaders = strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
	a.signature = q.Get("X-Amz-Signature")
	if a.t, err = time.Parse(TimeFormat, q.Get("X-Amz-Date")); err != nil {
		return auth{}, &Error{CodeIncomplete, "X-Amz-Date " + q.Get("X-Amz-Date") + " is not in the form 20060102T150405Z."}
	}
	secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || secs <= 0 || secs > 7*24*3600 {
		return auth{}, &Error{CodeIncomplete, "X-Amz-Expires must be a number of seconds between 1 and 604800."}
	}
	a.expires = time.Duration(secs) * time.Second
	return a, nil
}

func parseCredential(c string) (auth, error) {
	p := strings.Split(c, "/")
	if len(p) != 5 || p[4] != "aws4_request" || p[0] == "" {
		return auth{}, &Error{CodeIncomplete, "Credential " + c + " is not of the form ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request."}
	}
	return auth{accessKey: p[0], date: p[1], region: p[2], service: p[3]}, nil
}

func (v *Verifier) checkScope(a auth) error {
	if a.service != v.Service {
		return &Error{CodeInvalidSignature, fmt.Sprintf("Credential should be scoped to correct service: '%s'.", v.Service)}
	}
	if a.region != v.Region {
		return &Error{CodeInvalidSignature, fmt.Sprintf("Credential should be scoped to a valid region, not '%s': this server serves region %s; set --region %s or AWS_REGION.", a.region, v.Region, v.Region)}
	}
	if a.date != a.t.Format("20060102") {
		return &Error{CodeInvalidSignature, fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s'.", a.date, a.t.Format("20060102"))}
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.MaxSkew
	if skew == 0 {
		skew = DefaultMaxSkew
	}
	n := now().UTC()
	ts := a.t.Format(TimeFormat)
	if a.presigned {
		if n.After(a.t.Add(a.expires)) {
			return &Error{CodeInvalidSignature, fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %s).", a.t.Add(a.expires).Format(TimeFormat), n.Format(TimeFormat), n.Format(TimeFormat), a.expires)}
		}
		if a.t.After(n.Add(skew)) {
			return &Error{CodeInvalidSignature, fmt.Sprintf("Signature not yet current: %s is still later than %s.", ts, n.Add(skew).Format(TimeFormat))}
		}
		return nil
	}
	if a.t.Before(n.Add(-skew)) {
		return &Error{CodeInvalidSignature, fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %d min.). Check the clock of the signing machine.",
			ts, n.Add(-skew).Format(TimeFormat), n.Format(TimeFormat), int(skew.Minutes()))}
	}
	if a.t.After(n.Add(skew)) {
		return &Error{CodeInvalidSignature, fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %d min.). Check the clock of the signing machine.",
			ts, n.Add(skew).Format(TimeFormat), n.Format(TimeFormat), int(skew.Minutes()))}
	}
	return nil
}

// canonical rebuilds the canonical request r was signed as.
func canonical(r *http.Request, a auth, payload string) CanonicalRequest {
	query := map[string][]string{}
	for _, part := range strings.Split(r.URL.RawQuery, "&") {
		if part == "" {
			continue
		}
		k, val, _ := strings.Cut(part, "=")
		k, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(val)
		if err1 != nil || err2 != nil {
			continue
		}
		if a.presigned && k == "X-Amz-Signature" {
			continue
		}
		query[k] = append(query[k], val)
	}
	headers := map[string][]string{}
	for _, h := range a.signedHeaders {
		switch h {
		case "host":
			headers[h] = []string{r.Host}
		case "content-length":
			if vs := r.Header.Values(h); len(vs) > 0 {
				headers[h] = vs
			} else {
				headers[h] = []string{strconv.FormatInt(max(r.ContentLength, 0), 10)}
			}
		default:
			headers[h] = r.Header.Values(h)
		}
	}
	return CanonicalRequest{
		Method:        r.Method,
		EscapedPath:   r.URL.EscapedPath(),
		Query:         query,
		Headers:       headers,
		SignedHeaders: a.signedHeaders,
		PayloadHash:   payload,
	}
}
