package dataset

import (
	"reflect"
	"strings"
	"testing"

	"github.com/dialogbot/dialogbot/model/dialog"
)

func TestReadCSV(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		roles   CSVRoles
		anon    bool
		want    []brief
		skipped map[string]int
	}{
		{"alternating roles, multi-line and empty cells", "dialogues.csv", RolesAlternate, false, []brief{
			{0, "response", []dialog.Turn{u("Привет")}, "Здравствуй"},
			{1, "response", []dialog.Turn{b("Привет"), u("Здравствуй")}, "Как дела?\nЧто нового?"},
			// context_2 is empty: context_3 is two turns before context_1, the user's too.
			{2, "response", []dialog.Turn{u("Привет"), u("Как дела?")}, "Хорошо"},
		}, map[string]int{"empty_response": 1, "no_context": 1}},
		{"every context cell the user's", "dialogues.csv", RolesUser, false, []brief{
			{0, "response", []dialog.Turn{u("Привет")}, "Здравствуй"},
			{1, "response", []dialog.Turn{u("Привет"), u("Здравствуй")}, "Как дела?\nЧто нового?"},
			{2, "response", []dialog.Turn{u("Привет"), u("Как дела?")}, "Хорошо"},
		}, map[string]int{"empty_response": 1, "no_context": 1}},
		{"columns in another order, CRLF", "reordered.csv", RolesAlternate, false, []brief{
			{0, "response", []dialog.Turn{u("Hello")}, "Hi"},
		}, map[string]int{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			skipped := map[string]int{}
			got, st, err := ReadCSV(openFixture(t, tc.fixture), tc.roles, tc.anon, func(r string) { skipped[r]++ })
			if err != nil {
				t.Fatal(err)
			}
			if g := briefs(got); !reflect.DeepEqual(g, tc.want) {
				t.Errorf("samples:\n got %+v\nwant %+v", g, tc.want)
			}
			if !reflect.DeepEqual(skipped, tc.skipped) || st.Messages != len(tc.want)+len(tc.skipped) {
				t.Errorf("skipped %v (rows %d), want %v", skipped, st.Messages, tc.skipped)
			}
		})
	}
}

func TestReadCSVAnonymize(t *testing.T) {
	in := "context_1,response\nmail me: a.b@mail.ru,call +7 (999) 123-45-67 or see https://t.me/x\n"
	got, _, err := ReadCSV(strings.NewReader(in), RolesAlternate, true, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Context[0].Text != "mail me: [email]" || got[0].Reply != "call [phone] or see [link]" {
		t.Errorf("got %+v", got[0])
	}
}

func TestReadCSVErrors(t *testing.T) {
	tests := []struct {
		name, input, want string
	}{
		{"unterminated quote", "context_1,response\n\"never closed,x\nnext,row\n", "unterminated quoted cell starting on line 2"},
		{"no response column", "context_1,answer\na,b\n", "want context_N ... context_1 and response"},
		{"no context column", "question,response\na,b\n", "want context_N ... context_1 and response"},
		{"wrong number of cells", "context_1,response\na,b,c\n", "line 2"},
		{"empty file", "", "empty csv file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadCSV(strings.NewReader(tc.input), RolesAlternate, false, func(string) {})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	_, _, err := ReadCSV(openFixture(t, "truncated.csv"), RolesAlternate, false, func(string) {})
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated.csv: %v", err)
	}
}

func TestAnonymize(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"email", "write to ivan.petrov+bot@yandex.ru today", "write to [email] today"},
		{"cyrillic email", "почта: маша@почта.рф", "почта: [email]"},
		{"url", "see https://example.com/a?b=c, ok", "see [link] ok"},
		{"bare domain", "go to github.com/x now", "go to [link] now"},
		{"t.me", "join t.me/chat", "join [link]"},
		{"russian phone", "звони 8 (999) 123-45-67!", "звони [phone]!"},
		{"international phone", "+44 20 7946 0958", "[phone]"},
		{"date stays", "25.11.2022 and 2023-09-09", "25.11.2022 and 2023-09-09"},
		{"short number stays", "price 1 500 000", "price 1 500 000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Anonymize(tc.in); got != tc.want {
				t.Errorf("Anonymize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestScanCSVExcel: Excel's "CSV UTF-8" starts with a byte order mark, may
// quote the header and, in locales with a decimal comma, separates by ';'.
func TestScanCSVExcel(t *testing.T) {
	for name, in := range map[string]string{
		"bom, quoted header":        "\ufeff\"context_1\",\"response\"\r\nHi,Hello\r\n",
		"bom, semicolons":           "\ufeff\"context_1\";\"response\"\r\nHi;Hello\r\n",
		"no bom, semicolons":        "context_1;response\nHi;Hello\n",
		"commas with ; inside cell": "context_1,response\nHi,\"Hello; bye\"\n",
	} {
		t.Run(name, func(t *testing.T) {
			got, _, err := ReadCSV(strings.NewReader(in), RolesAlternate, false, func(string) {})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Context[0].Text != "Hi" || !strings.HasPrefix(got[0].Reply, "Hello") {
				t.Errorf("got %+v", got)
			}
		})
	}
}

// TestScanCSVStreams: each row reaches the callback before the next row is
// read, so a CSV is never held whole.
func TestScanCSVStreams(t *testing.T) {
	r := &countingReader{r: strings.NewReader("context_1,response\n" + strings.Repeat("a,b\n", 200_000))}
	rows := 0
	_, err := ScanCSV(r, RolesAlternate, false, func(string) {}, func(Sample) error {
		rows++
		if rows == 1 && r.n > 1<<20 {
			t.Errorf("%d bytes read before the first row was passed on", r.n)
		}
		return nil
	})
	if err != nil || rows != 200_000 {
		t.Errorf("rows %d, err %v", rows, err)
	}
}
