package session

import (
	"strings"
	"testing"
)

// A key prefix with a brace (say a deployment named "shop{eu:") would start a Redis Cluster hash tag of
// its own: "hold:{t}" and "tok:{t}" would then hash to different slots and the release script would fail
// with CROSSSLOT on every last logout (found with a real three-node Cluster). Such a prefix is refused
// when the store is built.
func TestPrefixWithBraceIsRefused(t *testing.T) {
	for _, prefix := range []string{"shop{eu:", "shop}:", "{x}:"} {
		_, err := NewMemory(Options{Prefix: prefix, Keyring: mustKeyring(t, keyA)})
		if err == nil || !strings.Contains(err.Error(), "Prefix") {
			t.Errorf("NewMemory with prefix %q = %v, want an error naming Prefix", prefix, err)
		}
	}
	if _, err := NewMemory(Options{Prefix: "shop-eu:", Keyring: mustKeyring(t, keyA)}); err != nil {
		t.Errorf("a plain prefix was refused: %v", err)
	}
}
