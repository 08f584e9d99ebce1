package mskcli

import (
	"encoding/json"
	"fmt"
)

// render writes an SDK output struct as the AWS CLI shows it: indented JSON
// with the model's member names, without empty members or response metadata.
func (c *cli) render(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var tree any
	if err := json.Unmarshal(b, &tree); err != nil {
		return err
	}
	tree = prune(tree)
	if tree == nil {
		return nil // an empty response (TagResource, UntagResource) prints nothing
	}
	out, err := json.MarshalIndent(tree, "", "    ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.out, string(out))
	return err
}

// prune drops nulls, ResultMetadata and objects left empty by that.
func prune(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if k == "ResultMetadata" {
				delete(t, k)
				continue
			}
			if p := prune(x); p == nil {
				delete(t, k)
			} else {
				t[k] = p
			}
		}
		if len(t) == 0 {
			return nil
		}
		return t
	case []any:
		for i, x := range t {
			t[i] = prune(x)
		}
		return t
	}
	return v
}
