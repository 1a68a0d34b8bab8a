package dataset

import "testing"

func TestAnonymizeKeepsDatesAndFindsRfLinks(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"iso date and time", "встреча 2020-01-01 12:30", "встреча 2020-01-01 12:30"},
		{"dotted date and time", "в 01.01.2020 12:30 у входа", "в 01.01.2020 12:30 у входа"},
		{"numbers on two lines", "коды:\n123456\n7890", "коды:\n123456\n7890"},
		{"phone after a date", "01.01.2020 звони +7 999 123-45-67", "01.01.2020 звони [phone]"},
		{"phone", "call 8 800 555 35 35", "call [phone]"},
		{"rf domain", "сайт кремль.рф и https://x.ru", "сайт [link] и [link]"},
		{"rf domain with path", "см. госуслуги.рф/help", "см. [link]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Anonymize(tc.in); got != tc.want {
				t.Errorf("Anonymize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
