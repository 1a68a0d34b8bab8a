package bot

import "strings"

// cleanText drops the control characters (C0 but tab and newline, and DEL)
// from a text on its way into the store or to Telegram. A user's message
// may carry them, and a model can produce them (byte-level BPE has a token
// for every byte): PostgreSQL refuses a NUL in text ("invalid byte
// sequence for encoding UTF8: 0x00"), so a reply holding one could never
// be recorded as sent and ended, a minute of retries later, in the
// apology; none of them shows as anything in a chat.
func cleanText(s string) string {
	if strings.IndexFunc(s, isControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return -1
		}
		return r
	}, s)
}

func isControl(r rune) bool {
	return (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f
}
