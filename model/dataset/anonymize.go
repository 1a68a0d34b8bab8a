package dataset

import (
	"regexp"
	"strings"
)

// Placeholders that replace personal data when anonymizing.
const (
	PhonePlaceholder = "[phone]"
	EmailPlaceholder = "[email]"
	LinkPlaceholder  = "[link]"
)

var (
	emailRE = regexp.MustCompile(`[\p{L}\p{N}._%+-]+@[\p{L}\p{N}-]+(?:\.[\p{L}\p{N}-]+)*\.\p{L}{2,}`)
	// .рф has its own branch: \b and [a-z] are ASCII-only, so it never matched among the others.
	linkRE = regexp.MustCompile(`(?i)(?:https?://|www\.|t\.me/)\S+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|ru|org|net|io|me|info|uz)\b(?:/\S*)?|[\p{L}\p{N}-]+\.рф(?:/\S*)?`)
	// phoneCandRE finds digit runs with separators; phones are those of them
	// with enough digits, so dates and prices stay.
	// Separators are spaces and tabs, not newlines: numbers on separate lines are not one phone.
	phoneCandRE = regexp.MustCompile(`\+?\(?\d[\d \t().-]{5,}\d`)
	// dateRE: a candidate that starts with a date ("2020-01-01 12", "01.01.2020 12") is a date and time.
	dateRE = regexp.MustCompile(`^(?:\d{4}-\d\d-\d\d|\d\d?[./]\d\d?[./]\d{2,4})(?:\D|$)`)
)

// Anonymize replaces e-mail addresses, links and phone numbers in s with
// placeholders. E-mails go first, so their domain is not taken for a link.
func Anonymize(s string) string {
	s = emailRE.ReplaceAllString(s, EmailPlaceholder)
	s = linkRE.ReplaceAllString(s, LinkPlaceholder)
	return phoneCandRE.ReplaceAllStringFunc(s, anonymizePhone)
}

// anonymizePhone keeps a candidate unless it has the digits of a phone
// number: 10 to 15, or 7 and more after a leading "+".
func anonymizePhone(c string) string {
	digits := 0
	for _, r := range c {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	if dateRE.MatchString(c) {
		return c
	}
	if (digits >= 10 && digits <= 15) || (strings.HasPrefix(c, "+") && digits >= 7) {
		return PhonePlaceholder
	}
	return c
}

// anonymizeEntity uses the types Telegram gives pieces of text, which catch
// what the patterns may miss.
func anonymizeEntity(e tgEntity) string {
	switch e.Type {
	case "phone":
		return PhonePlaceholder
	case "email":
		return EmailPlaceholder
	case "link", "url":
		return LinkPlaceholder
	}
	return e.Text
}
