package mskcli

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// This file reads the AWS CLI's kinds of parameter values: JSON structures
// (inline or file://path), blobs (fileb://path, file://path or text), lists
// (repeated flags or comma-separated) and tag maps (JSON or k=v,k=v).

// listFlag collects a list from repeated flags and comma-separated values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// readParam returns the text of a parameter: the file's content for
// file://path and fileb://path, else s itself.
func readParam(s string) ([]byte, error) {
	for _, prefix := range []string{"fileb://", "file://"} {
		if path, ok := strings.CutPrefix(s, prefix); ok {
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			return b, nil
		}
	}
	return []byte(s), nil
}

// jsonParam decodes a JSON structure parameter into v. Member names are the
// AWS CLI's (PascalCase), as in `aws kafka ... --broker-node-group-info`.
func jsonParam(flag, s string, v any) error {
	b, err := readParam(s)
	if err != nil {
		return fmt.Errorf("--%s: %w", flag, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("--%s is not valid JSON for this parameter: %w", flag, err)
	}
	return nil
}

// tagsParam parses tags as JSON ({"k":"v"}) or shorthand (k=v,k2=v2).
func tagsParam(s string) (map[string]string, error) {
	b, err := readParam(s)
	if err != nil {
		return nil, fmt.Errorf("--tags: %w", err)
	}
	text := strings.TrimSpace(string(b))
	tags := map[string]string{}
	if strings.HasPrefix(text, "{") {
		if err := json.Unmarshal([]byte(text), &tags); err != nil {
			return nil, fmt.Errorf("--tags is not a JSON object of strings: %w", err)
		}
		return tags, nil
	}
	for _, kv := range strings.Split(text, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--tags %q: write KEY=VALUE,KEY=VALUE or a JSON object", s)
		}
		tags[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return tags, nil
}
