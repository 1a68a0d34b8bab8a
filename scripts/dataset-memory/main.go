// Command dataset-memory measures the peak memory (RSS) of `dialogbot
// dataset` on a big generated input: a single-chat Telegram export, or a
// dialogue CSV, of the size asked for. Real exports that big cannot be
// committed; the generated one has the shape of a real one (many senders,
// replies, entity lists, media, service messages, long and short texts).
//
//	go run ./scripts/dataset-memory -mb 200 -kind telegram -tokenizer ../shared/models/nano-ru/tokenizer.json
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	mb := flag.Int("mb", 200, "size of the generated input in MB")
	kind := flag.String("kind", "telegram", "telegram or csv")
	bin := flag.String("bin", "bin/dialogbot", "the dialogbot binary")
	tok := flag.String("tokenizer", "../shared/models/nano-ru/tokenizer.json", "tokenizer.json")
	keep := flag.Bool("keep", false, "keep the temporary directory")
	flag.Parse()
	if err := run(*mb, *kind, *bin, *tok, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "dataset-memory:", err)
		os.Exit(1)
	}
}

func run(mb int, kind, bin, tok string, keep bool) error {
	dir, err := os.MkdirTemp("", "dataset-memory")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	in := filepath.Join(dir, "input."+map[string]string{"telegram": "json", "csv": "csv"}[kind])
	gen := genTelegram
	if kind == "csv" {
		gen = genCSV
	}
	if err := writeFile(in, int64(mb)<<20, gen); err != nil {
		return err
	}
	fi, err := os.Stat(in)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "dataset", "--"+kind, in, "--tokenizer", tok, "--out", filepath.Join(dir, "out"), "--progress-mb", "0")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return err
	}
	wall := time.Since(start)
	rss := int64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) << 10 // KB on Linux
	fmt.Printf("%s input %.1f MB: peak RSS %.1f MB (%.2fx the input), %.1f s\n",
		kind, float64(fi.Size())/(1<<20), float64(rss)/(1<<20), float64(rss)/float64(fi.Size()), wall.Seconds())
	return nil
}

func writeFile(path string, size int64, gen func(w *bufio.Writer, size int64)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	gen(w, size)
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

var words = strings.Fields(`привет как дела что нового сегодня завтра вчера погода хорошо плохо работа дом кот собака
	книга фильм музыка встреча вечером утром спасибо пожалуйста да нет может быть конечно думаю знаю hello how are you
	what is new today tomorrow weather good bad work home cat dog book movie music meeting evening morning thanks please
	yes no maybe of course think know английский язык урок слово грамматика practice lesson word grammar question answer`)

func sentence(r *rand.Rand) string {
	n := 1 + r.IntN(25)
	if r.IntN(20) == 0 {
		n += 100 // a long message now and then
	}
	parts := make([]string, n)
	for i := range parts {
		parts[i] = words[r.IntN(len(words))]
	}
	return strings.Join(parts, " ")
}

// genTelegram writes a single-chat export in the newer format.
func genTelegram(w *bufio.Writer, size int64) {
	r := rand.New(rand.NewPCG(1, 2))
	fmt.Fprint(w, `{"name": "Big group", "type": "private_supergroup", "id": 123456789, "messages": [`)
	t := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	var written int64
	for id := 1; written < size; id++ {
		t = t.Add(time.Duration(r.IntN(600)) * time.Second)
		if r.IntN(50) == 0 {
			t = t.Add(2 * time.Hour) // a new dialogue
		}
		m := map[string]any{"id": id, "type": "message", "date": t.Format("2006-01-02T15:04:05"),
			"date_unixtime": fmt.Sprint(t.Unix()), "from": fmt.Sprintf("User %d", r.IntN(140)), "from_id": fmt.Sprintf("user%d", r.IntN(140))}
		text := sentence(r)
		switch k := r.IntN(20); {
		case k == 0:
			m["type"], m["actor"], m["action"] = "service", m["from"], "join_group_by_link"
			text = ""
		case k == 1:
			m["photo"], m["width"], m["height"] = "(File not included.)", 800, 600
		case k < 8 && id > 1:
			m["reply_to_message_id"] = id - 1 - r.IntN(min(id-1, 20))
		}
		m["text"] = text
		m["text_entities"] = []map[string]string{{"type": "plain", "text": text}}
		if r.IntN(10) == 0 {
			link := "https://example.com/" + words[r.IntN(len(words))]
			m["text"] = []any{text + " ", map[string]string{"type": "link", "text": link}}
			m["text_entities"] = []map[string]string{{"type": "plain", "text": text + " "}, {"type": "link", "text": link}}
		}
		b, _ := json.Marshal(m)
		if id > 1 {
			w.WriteString(",\n  ")
		}
		w.Write(b)
		written += int64(len(b)) + 4
	}
	fmt.Fprint(w, "]}\n")
}

// genCSV writes a context_3,context_2,context_1,response CSV.
func genCSV(w *bufio.Writer, size int64) {
	r := rand.New(rand.NewPCG(1, 2))
	w.WriteString("context_3,context_2,context_1,response\n")
	var written int64
	for written < size {
		cells := make([]string, 4)
		for i := range cells {
			cells[i] = `"` + strings.ReplaceAll(sentence(r), `"`, `""`) + `"`
		}
		line := strings.Join(cells, ",") + "\n"
		w.WriteString(line)
		written += int64(len(line))
	}
}
