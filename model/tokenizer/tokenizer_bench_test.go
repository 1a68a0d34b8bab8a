package tokenizer

import (
	"strings"
	"testing"
)

// russianBenchText is a paragraph of ordinary Russian prose and dialogue.
const russianBenchText = `Вчера вечером мы с друзьями собрались у Саши на даче. Погода была отличная, ` +
	`хотя к ночи заметно похолодало, и пришлось разжечь камин. Мы жарили шашлыки, ` +
	`спорили о книгах и вспоминали, как в школе сбегали с уроков физики. ` +
	`@@ПЕРВЫЙ@@ Ты помнишь, как звали нашу учительницу? @@ВТОРОЙ@@ Конечно, Мария Ивановна! ` +
	`Она до сих пор иногда пишет мне в Телеграме и спрашивает, чем я занимаюсь. ` +
	`Около полуночи пошёл дождь, и все перебрались в дом — пить чай с вареньем ` +
	`и слушать, как капли стучат по крыше. Утром никто не хотел уезжать.`

// BenchmarkEncodeRussian reports the throughput of Encode on Russian text
// (MB/s of UTF-8 input) with the shared ru tokenizer, both with a warm word
// cache (the usual case in a chat) and with every word merged from scratch.
func BenchmarkEncodeRussian(b *testing.B) {
	tok := loadSharedTokenizer(b, "ru-tokenizer.json")
	text := strings.Repeat(russianBenchText+"\n", 4)
	b.Run("cached", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		b.ReportAllocs()
		for b.Loop() {
			tok.Encode(text)
		}
	})
	b.Run("uncached", func(b *testing.B) {
		tok.cache = nil // a nil cache never hits: every word goes through BPE
		b.SetBytes(int64(len(text)))
		b.ReportAllocs()
		for b.Loop() {
			tok.Encode(text)
		}
	})
}

// BenchmarkEncodeRussianTiny is the same on the hand-made fixture, so that a
// number exists where ../shared is absent.
func BenchmarkEncodeRussianTiny(b *testing.B) {
	tok := loadTinyTokenizer(b)
	b.SetBytes(int64(len(russianBenchText)))
	b.ReportAllocs()
	for b.Loop() {
		tok.Encode(russianBenchText)
	}
}
