package dataset

import (
	"bufio"
	"bytes"
	"io"
)

// utf8BOM is what Windows tools (Excel, Notepad) put before UTF-8 text.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// skipBOM returns r without a leading UTF-8 byte order mark: encoding/json
// rejects it as an invalid character, and encoding/csv would make it part of
// the first header cell (breaking a quoted one).
func skipBOM(r io.Reader) io.Reader {
	br := bufio.NewReaderSize(r, 64<<10)
	if head, _ := br.Peek(len(utf8BOM)); bytes.Equal(head, utf8BOM) {
		_, _ = br.Discard(len(utf8BOM))
	}
	return br
}
