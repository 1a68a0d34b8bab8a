// Package testfile has small file helpers for tests. It imports no cgo
// package, so pure-Go packages (model, model/dataset, bot) can use it.
package testfile

import (
	"encoding/json"
	"os"
	"testing"
)

// ReadJSON decodes the JSON file at path into v, failing the test otherwise.
func ReadJSON(tb testing.TB, path string, v any) {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, v)
	}
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
}
