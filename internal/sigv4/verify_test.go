package sigv4_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/fjord-io/fjord/internal/sigv4"
)

const (
	keyID  = "AKIAFJORDTEST0000001"
	secret = "s3cr3t/s3cr3t+s3cr3t"
)

func secrets(_ context.Context, id string) (string, error) {
	if id == keyID {
		return secret, nil
	}
	return "", sigv4.ErrUnknownKey
}

// sign signs r the way aws-sdk-go-v2 does for the kafka service.
func sign(t *testing.T, r *http.Request, body, key, sec, region string, at time.Time) {
	t.Helper()
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: key, SecretAccessKey: sec}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), "kafka", region, at); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	arnPath := "/v1/clusters/" + url.PathEscape("arn:aws:kafka:us-east-1:000000000000:cluster/demo/abc-1") + "/nodes"
	arnPath = strings.ReplaceAll(arnPath, ":", "%3A")
	tests := []struct {
		name     string
		path     string
		query    string
		body     string
		key, sec string
		region   string
		at       time.Time
		tamper   func(r *http.Request)
		wantCode string
	}{
		{name: "ok get", path: "/v1/clusters", at: now},
		{name: "ok escaped arn path", path: arnPath, query: "maxResults=2&nextToken=a%2Bb", at: now},
		{name: "ok multi-valued query", path: "/v1/tags/x", query: "tagKeys=b&tagKeys=a%20c", at: now},
		{name: "ok post body", path: "/v1/clusters", body: `{"clusterName":"x"}`, at: now},
		{name: "ok skew inside window", path: "/v1/clusters", at: now.Add(-14 * time.Minute)},
		{name: "stale", path: "/v1/clusters", at: now.Add(-16 * time.Minute), wantCode: sigv4.CodeInvalidSignature},
		{name: "future", path: "/v1/clusters", at: now.Add(16 * time.Minute), wantCode: sigv4.CodeInvalidSignature},
		{name: "unknown key", path: "/v1/clusters", key: "AKIANOPE", at: now, wantCode: sigv4.CodeUnrecognizedClient},
		{name: "wrong secret", path: "/v1/clusters", sec: "wrong", at: now, wantCode: sigv4.CodeInvalidSignature},
		{name: "wrong region", path: "/v1/clusters", region: "eu-west-1", at: now, wantCode: sigv4.CodeInvalidSignature},
		{name: "body changed", path: "/v1/clusters", body: `{"a":1}`, at: now, wantCode: sigv4.CodeInvalidSignature,
			tamper: func(r *http.Request) { r.Header.Del("X-Amz-Content-Sha256"); r.Body = http.NoBody }},
		{name: "path changed", path: "/v1/clusters", at: now, wantCode: sigv4.CodeInvalidSignature,
			tamper: func(r *http.Request) { r.URL.Path = "/v1/configurations"; r.URL.RawPath = "" }},
		{name: "unsigned", path: "/v1/clusters", at: now, wantCode: sigv4.CodeMissingToken,
			tamper: func(r *http.Request) { r.Header.Del("Authorization") }},
		{name: "garbled header", path: "/v1/clusters", at: now, wantCode: sigv4.CodeIncomplete,
			tamper: func(r *http.Request) { r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := "http://127.0.0.1:8080" + tt.path
			if tt.query != "" {
				target += "?" + tt.query
			}
			method := http.MethodGet
			if tt.body != "" {
				method = http.MethodPost
			}
			r := httptest.NewRequest(method, target, strings.NewReader(tt.body))
			key, sec, region := keyID, secret, "us-east-1"
			if tt.key != "" {
				key = tt.key
			}
			if tt.sec != "" {
				sec = tt.sec
			}
			if tt.region != "" {
				region = tt.region
			}
			sign(t, r, tt.body, key, sec, region, tt.at)
			if tt.tamper != nil {
				tt.tamper(r)
			}
			v := sigv4.Verifier{Service: "kafka", Region: "us-east-1", Secret: secrets, Now: func() time.Time { return now }}
			id, err := v.Verify(t.Context(), r)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if id.AccessKeyID != keyID {
					t.Errorf("AccessKeyID = %q", id.AccessKeyID)
				}
				return
			}
			var se *sigv4.Error
			if !errors.As(err, &se) || se.Code != tt.wantCode {
				t.Fatalf("Verify error = %v, want code %s", err, tt.wantCode)
			}
		})
	}
}

func TestVerifyPresigned(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := httptest.NewRequest(http.MethodGet, "https://kafka.us-east-1.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-Expires=900", nil)
	creds := aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, r, sigv4.EmptyHash, "kafka-cluster", "us-east-1", now)
	if err != nil {
		t.Fatal(err)
	}
	pr := httptest.NewRequest(http.MethodGet, u, nil)
	v := sigv4.Verifier{Service: "kafka-cluster", Region: "us-east-1", Secret: secrets, Now: func() time.Time { return now.Add(time.Minute) }}
	if _, err := v.Verify(t.Context(), pr); err != nil {
		t.Fatalf("Verify presigned: %v", err)
	}
	v.Now = func() time.Time { return now.Add(16 * time.Minute) }
	var se *sigv4.Error
	if _, err := v.Verify(t.Context(), pr); !errors.As(err, &se) || se.Code != sigv4.CodeInvalidSignature {
		t.Fatalf("expired presigned URL: err = %v", err)
	}
}
