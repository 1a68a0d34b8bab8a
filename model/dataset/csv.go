package dataset

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dialogbot/dialogbot/model/dialog"
)

// CSVRoles says who the context cells of a dialogue CSV were written by; the
// layout does not record it.
type CSVRoles string

const (
	// RolesAlternate: speakers alternate back from the response, so
	// context_1 is the user, context_2 the bot, ... (the classic DialoGPT reading).
	RolesAlternate CSVRoles = "alternate"
	// RolesUser: every context cell is the user's (someone else than the responder).
	RolesUser CSVRoles = "user"
)

// ParseCSVRoles checks a --csv-roles value.
func ParseCSVRoles(s string) (CSVRoles, error) {
	switch r := CSVRoles(s); r {
	case RolesAlternate, RolesUser:
		return r, nil
	case "":
		return RolesAlternate, nil
	}
	return "", fmt.Errorf("unknown csv roles %q (want %q or %q)", s, RolesAlternate, RolesUser)
}

var contextColRE = regexp.MustCompile(`^context_(\d+)$`)

// csvLayout is where the context cells (oldest first) and the response are.
type csvLayout struct {
	context  []int
	response int
}

// ReadCSV reads a whole dialogue CSV into samples (see ScanCSV); for tests
// and small files: big ones go through ScanCSV, which keeps no text.
func ReadCSV(r io.Reader, roles CSVRoles, anonymize bool, skipped func(reason string)) ([]Sample, ReadStats, error) {
	var out []Sample
	st, err := ScanCSV(r, roles, anonymize, skipped, func(s Sample) error {
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, st, err
	}
	return out, st, nil
}

// ScanCSV streams a dialogue CSV whose header names context_N ... context_1
// (any number, in any column order) and response; other columns are ignored.
// Each row with a response and some context is one sample and one dialogue,
// passed to each as soon as it is read, so memory does not grow with the
// file. Rows keep file order, which stands for time in the train/valid split.
// A leading byte order mark (Excel's "CSV UTF-8") is skipped, and a header
// with semicolons but no commas (Excel in locales with a decimal comma)
// switches the separator to ';'.
func ScanCSV(r io.Reader, roles CSVRoles, anonymize bool, skipped func(reason string), each func(Sample) error) (ReadStats, error) {
	br := bufio.NewReaderSize(skipBOM(r), 64<<10)
	cr := csv.NewReader(br)
	cr.Comma = sniffComma(br)
	cr.ReuseRecord = true
	var st ReadStats
	header, err := cr.Read()
	if err != nil {
		return st, fmt.Errorf("csv header: %w", csvErr(err))
	}
	lay, err := layoutOf(header)
	if err != nil {
		return st, err
	}
	for row := 0; ; row++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return st, nil
		}
		if err != nil {
			return st, csvErr(err)
		}
		st.Messages++
		s, reason := lay.sample(rec, roles, anonymize, row)
		if reason != "" {
			skipped(reason)
			continue
		}
		if err := each(s); err != nil {
			return st, err
		}
	}
}

// sniffComma looks at the header line: ';' when it has semicolons and no
// commas, else ','.
func sniffComma(br *bufio.Reader) rune {
	head, _ := br.Peek(br.Size())
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	if bytes.IndexByte(head, ',') < 0 && bytes.IndexByte(head, ';') >= 0 {
		return ';'
	}
	return ','
}

// csvErr names a truncated quoted cell plainly; encoding/csv errors already
// carry the line and column.
func csvErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrQuote) {
		return fmt.Errorf("malformed or truncated csv (unterminated quoted cell starting on line %d): %w", pe.StartLine, err)
	}
	if errors.Is(err, io.EOF) {
		return errors.New("empty csv file")
	}
	return fmt.Errorf("malformed csv: %w", err)
}

func layoutOf(header []string) (csvLayout, error) {
	lay := csvLayout{response: -1}
	type col struct{ n, idx int }
	var ctx []col
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if h == "response" {
			lay.response = i
		} else if m := contextColRE.FindStringSubmatch(h); m != nil {
			n, _ := strconv.Atoi(m[1])
			ctx = append(ctx, col{n, i})
		}
	}
	if lay.response < 0 || len(ctx) == 0 {
		return lay, fmt.Errorf("csv header %q: want context_N ... context_1 and response columns", header)
	}
	sort.Slice(ctx, func(a, b int) bool { return ctx[a].n > ctx[b].n })
	for _, c := range ctx {
		lay.context = append(lay.context, c.idx)
	}
	return lay, nil
}

// sample makes one row a sample; empty context cells are skipped.
func (l csvLayout) sample(rec []string, roles CSVRoles, anonymize bool, row int) (Sample, string) {
	clean := func(s string) string {
		if anonymize {
			s = Anonymize(s)
		}
		return strings.TrimSpace(s)
	}
	reply := clean(rec[l.response])
	if reply == "" {
		return Sample{}, "empty_response"
	}
	var turns []dialog.Turn
	for k, i := range l.context {
		t := clean(rec[i])
		if t == "" {
			continue
		}
		// Roles go by the column, not by the cells left: an empty cell
		// (usually a sticker or a photo) was still somebody's turn, so
		// context_2 stays the bot's even when context_1 is empty.
		sp := dialog.User
		if roles == RolesAlternate && (len(l.context)-k)%2 == 0 {
			sp = dialog.Bot
		}
		turns = append(turns, dialog.Turn{Speaker: sp, Text: t})
	}
	if len(turns) == 0 {
		return Sample{}, "no_context"
	}
	// Row order stands for time: the split only compares times.
	return Sample{Time: time.Unix(int64(row), 0).UTC(), Dialogue: row, Speaker: "response", Context: turns, Reply: reply}, ""
}
