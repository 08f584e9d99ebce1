package controlplane

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fjord-io/fjord/internal/store"
)

// ensureRootKey makes sure the store has a root access key. The key from
// cfg wins; otherwise an existing root key is kept, or a new one made. A key
// Fjord generated is written in AWS shared-credentials format to
// DataDir/credentials (mode 0600), whose path is returned; with a key from
// cfg no file is written, and a stale one is removed.
func ensureRootKey(ctx context.Context, st store.Store, cfg Config) (string, error) {
	path := filepath.Join(cfg.DataDir, "credentials")
	if cfg.RootAccessKeyID != "" {
		k := store.AccessKey{ID: cfg.RootAccessKeyID, Secret: cfg.RootSecretAccessKey, Root: true, Created: time.Now()}
		if err := st.SetRootKey(ctx, k); err != nil {
			return "", err
		}
		if b, err := os.ReadFile(path); err == nil && !bytes.Contains(b, []byte(k.ID)) {
			if err := os.Remove(path); err != nil {
				return "", fmt.Errorf("remove stale credentials file: %w", err)
			}
		}
		return "", nil
	}
	k, ok, err := st.RootKey(ctx)
	if err != nil {
		return "", err
	}
	if !ok {
		k = store.AccessKey{ID: "AKIA" + randomString(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), Root: true, Created: time.Now(),
			Secret: randomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}
		if err := st.SetRootKey(ctx, k); err != nil {
			return "", err
		}
	}
	content := fmt.Sprintf(`# Root access key of the Fjord control plane at %s (region %s).
# Use it with the AWS CLI, an SDK or fjord kafka, for example:
#   AWS_SHARED_CREDENTIALS_FILE=%s aws --endpoint-url http://%s --region %s kafka list-clusters
[default]
aws_access_key_id = %s
aws_secret_access_key = %s
`, cfg.Listen, cfg.Region, path, cfg.Listen, cfg.Region, k.ID, k.Secret)
	if b, err := os.ReadFile(path); err == nil && string(b) == content {
		return path, os.Chmod(path, 0o600)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return "", fmt.Errorf("write credentials: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write credentials: %w", err)
	}
	return path, nil
}

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	rand.Read(b)
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(alphabet[int(c)%len(alphabet)])
	}
	return s.String()
}
