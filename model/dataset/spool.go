package dataset

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// spool keeps the token ids of the examples in a file instead of memory:
// examples repeat their context turns, so their ids can take twice the
// export's size, while what the split needs per example is a few fields.
// The file is unlinked as soon as it is created, so nothing is left behind
// even by a crash.
type spool struct {
	f   *os.File
	w   *bufio.Writer
	off int64 // ids written so far
	buf []byte
}

// newSpool creates the spool file in dir ("" for the system's temporary directory).
func newSpool(dir string) (*spool, error) {
	f, err := os.CreateTemp(dir, ".dialogbot-dataset-spool-*")
	if err != nil {
		return nil, fmt.Errorf("spool file: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool file: %w", err)
	}
	return &spool{f: f, w: bufio.NewWriterSize(f, 1<<20)}, nil
}

// add appends ids and returns their offset (in ids).
func (s *spool) add(ids []uint32) (int64, error) {
	off := s.off
	if err := binary.Write(s.w, binary.LittleEndian, ids); err != nil {
		return 0, fmt.Errorf("spool file: %w", err)
	}
	s.off += int64(len(ids))
	return off, nil
}

// read returns the n ids at off, in a buffer reused by the next call.
func (s *spool) read(off int64, n int, dst []uint32) ([]uint32, error) {
	if s.w.Buffered() > 0 {
		if err := s.w.Flush(); err != nil {
			return nil, fmt.Errorf("spool file: %w", err)
		}
	}
	if cap(s.buf) < 4*n {
		s.buf = make([]byte, 4*n)
	}
	b := s.buf[:4*n]
	if _, err := s.f.ReadAt(b, 4*off); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("spool file: %w", err)
	}
	dst = dst[:0]
	for i := 0; i < n; i++ {
		dst = append(dst, binary.LittleEndian.Uint32(b[4*i:]))
	}
	return dst, nil
}

func (s *spool) close() error { return s.f.Close() }
