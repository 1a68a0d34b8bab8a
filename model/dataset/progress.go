package dataset

import "io"

// ProgressReader calls Report with the bytes read so far each time another
// Step bytes have been read, for progress lines on big exports.
type ProgressReader struct {
	R      io.Reader
	Step   int64
	Report func(read int64)
	read   int64
	next   int64
}

func (p *ProgressReader) Read(b []byte) (int, error) {
	n, err := p.R.Read(b)
	p.read += int64(n)
	if p.next == 0 {
		p.next = p.Step
	}
	for p.Step > 0 && p.read >= p.next {
		p.Report(p.read)
		p.next += p.Step
	}
	return n, err
}
