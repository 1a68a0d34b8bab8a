package bot_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dialogbot/dialogbot/bot"
	"github.com/dialogbot/dialogbot/internal/storetest"
)

// The SQLite store passes the checks every store must pass.
func TestSQLiteStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T, keep int) bot.Storage {
		s, err := bot.OpenStore(context.Background(), filepath.Join(t.TempDir(), "store.db"), keep)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
