package telegramtest

import (
	"bytes"
	"sync"
)

// SyncBuffer collects log output written from many goroutines (the bot's
// workers), so a test can check it, for example for a leaked token.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *SyncBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *SyncBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
