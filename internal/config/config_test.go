package config

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/dialogbot/dialogbot/model/sample"
)

// validToken has the shape of a bot token.
const validToken = "123456:ABCdefGHIjklMNOpqrSTUvwxYZ0123456_-"

// writeConfig writes a config file in a temporary folder.
func writeConfig(t testing.TB, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadConfigDefaults(t *testing.T) {
	t.Setenv(TokenEnv, "")
	cfg, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Errorf("Load(\"\") differs from Default()")
	}
	g := cfg.Generation
	if g.MaxNewTokens != 40 || g.Temperature != 1.2 || g.TopK != 10 || g.TopP != 0.95 ||
		g.RepetitionPenalty != 1.2 || g.NoRepeatNgramSize != 2 || g.Candidates != 3 || g.Timeout != 30*time.Second {
		t.Errorf("generation defaults %+v", g)
	}
	if cfg.Telegram.APIURL != "https://api.telegram.org" || cfg.Telegram.Mode != "polling" || cfg.Model.Device != "auto" {
		t.Errorf("telegram/model defaults %+v %+v", cfg.Telegram, cfg.Model)
	}
}

func TestLoadConfigFileAndEnv(t *testing.T) {
	path := writeConfig(t, `
[telegram]
token = "from-file"
admin_ids = [1, 2]
mode = "webhook"
webhook_url = "https://example.org/telegram"
webhook_secret = "abc_DEF-1"
[model]
path = "/models/nano-ru"
device = "cuda:1"
[generation]
timeout = "5s"
[storage]
path = "/var/lib/dialogbot.db"
`)
	t.Setenv(TokenEnv, validToken)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Telegram.Token = validToken // the environment wins over the file
	want.Telegram.AdminIDs = []int64{1, 2}
	want.Telegram.Mode = "webhook"
	want.Telegram.WebhookURL = "https://example.org/telegram"
	want.Telegram.WebhookSecret = "abc_DEF-1"
	want.Model.Path, want.Model.Device = "/models/nano-ru", "cuda:1"
	want.Generation.Timeout = 5 * time.Second
	want.Storage.Path = "/var/lib/dialogbot.db"
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got %+v\nwant %+v", cfg, want)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	t.Setenv(TokenEnv, "")
	tests := []struct {
		name string
		toml string
		want string // in the error
	}{
		{"unknown key", "[telegram]\ntokn = \"x\"", `unknown key "telegram.tokn"`},
		{"unknown section", "[modle]\npath = \"x\"", `unknown key "modle`},
		{"zero temperature", "[generation]\ntemperature = 0", "generation.temperature: 0 (want above 0"},
		{"removed key", "[generation]\nmax_turns = 6", "generation.max_turns was removed (the conversation window is bot.history_turns alone)"},
		{"syntax", "[telegram\n", "config"},
		{"bad mode", "[telegram]\nmode = \"push\"", "telegram.mode"},
		{"webhook without url", "[telegram]\nmode = \"webhook\"\nwebhook_secret = \"s\"", "telegram.webhook_url"},
		{"bad secret", "[telegram]\nmode = \"webhook\"\nwebhook_url = \"https://x\"\nwebhook_secret = \"a b\"", "telegram.webhook_secret"},
		{"bad api url", "[telegram]\napi_url = \"api.telegram.org\"", "telegram.api_url"},
		{"bad device", "[model]\ndevice = \"gpu\"", "model.device"},
		{"bad cuda index", "[model]\ndevice = \"cuda:x\"", "model.device"},
		{"negative cuda index", "[model]\ndevice = \"cuda:-1\"", "model.device"},
		{"bad dtype", "[model]\ndtype = \"int8\"", "model.dtype"},
		{"bad prompt format", "[model]\nprompt_format = \"chatml\"", "model.prompt_format"},
		{"negative threads", "[model]\nthreads = -1", "model.threads"},
		{"zero slots", "[model]\nslots = 0", "model.slots"},
		{"negative max tokens", "[generation]\nmax_new_tokens = -5", "generation.max_new_tokens"},
		{"min above max", "[generation]\nmin_new_tokens = 50", "generation.min_new_tokens"},
		{"top_p above 1", "[generation]\ntop_p = 1.5", "generation.top_p"},
		{"negative temperature", "[generation]\ntemperature = -1.0", "generation.temperature"},
		{"negative seed", "[generation]\nseed = -1", "generation.seed"},
		{"bad timeout", "[generation]\ntimeout = \"soon\"", "timeout"},
		{"wrong type", "[generation]\ntop_k = \"ten\"", "top_k"},
		{"empty storage", "[storage]\npath = \"\"", "storage.path"},
		{"claim ttl too short", "[storage]\nclaim_ttl = \"1s\"", "storage.claim_ttl"},
		{"storage url not postgres", "[storage]\nurl = \"mysql://db/bot\"", "storage.url"},
		{"chance over 100", "[bot]\ngroup_chance = 150", "bot.group_chance"},
		{"zero rate", "[bot]\nchat_per_second = 0.0", "bot.chat_per_second"},
		{"negative history", "[bot]\nhistory_turns = -1", "bot.history_turns"},
		{"zero send deadline", "[bot]\nsend_deadline = \"0s\"", "bot.send_deadline"},
		{"too many webhook connections", "[telegram]\nwebhook_max_connections = 101", "telegram.webhook_max_connections"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tc.toml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// A config file with the token in it must be private to its owner.
func TestConfigWithTokenMustBePrivate(t *testing.T) {
	t.Setenv(TokenEnv, "")
	tests := []struct {
		name string
		text string
		mode os.FileMode
		want string // in the error; "" = loads
	}{
		{"token, world-readable", "[telegram]\ntoken = \"" + validToken + "\"", 0o644, "chmod 600"},
		{"token, group-readable", "[telegram]\ntoken = \"" + validToken + "\"", 0o640, "mode 0640"},
		{"token, private", "[telegram]\ntoken = \"" + validToken + "\"", 0o600, ""},
		{"no token, world-readable", "[bot]\ngroup_chance = 5", 0o644, ""},
		{"database password, world-readable", "[storage]\nurl = \"postgres://bot:pw@db/bot\"", 0o644, "chmod 600"},
		{"database without password, world-readable", "[storage]\nurl = \"postgres://bot@db/bot\"", 0o644, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.text)
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Load: %v, want it to load", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path)):
				t.Errorf("Load error %v, want one naming the file and %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), validToken):
				t.Errorf("the error shows the token")
			}
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "none.toml")); err == nil {
		t.Errorf("no error for a missing file")
	}
}

func TestValidateToken(t *testing.T) {
	tests := []struct {
		name, token string
		ok          bool
	}{
		{"valid", validToken, true},
		{"empty", "", false},
		{"short", "123:abc", false},
		{"no id", ":ABCdefGHIjklMNOpqrSTUvwxYZ0123456_-", false},
		{"bad character", "123456:ABCdefGHIjklMNOpqrSTUvwxYZ0123456_!", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			cfg.Telegram.Token = tc.token
			err := cfg.ValidateToken()
			if (err == nil) != tc.ok {
				t.Errorf("ValidateToken() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Errorf("the error repeats the token")
			}
		})
	}
}

// configKeys lists "section.key" for every field of Config, from its tags.
func configKeys(t testing.TB) []string {
	t.Helper()
	var keys []string
	ct := reflect.TypeOf(Config{})
	for i := range ct.NumField() {
		sec := ct.Field(i)
		for j := range sec.Type.NumField() {
			keys = append(keys, sec.Tag.Get("toml")+"."+sec.Type.Field(j).Tag.Get("toml"))
		}
	}
	return keys
}

// TestConfigExample checks that config.toml.example loads, sets every key of
// Config to its default (so it documents the defaults truthfully) and has a
// comment right above every key.
func TestConfigExample(t *testing.T) {
	t.Setenv(TokenEnv, "")
	cfg, err := Load(exampleConfig)
	if err != nil {
		t.Fatalf("the example does not load: %v", err)
	}
	if !reflect.DeepEqual(nilEmpty(cfg), Default()) {
		t.Errorf("the example's values differ from the defaults:\n%+v\n%+v", cfg, Default())
	}
	var probe Config
	md, err := toml.DecodeFile(exampleConfig, &probe)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range configKeys(t) {
		if !md.IsDefined(strings.Split(key, ".")...) {
			t.Errorf("the example does not set %s", key)
		}
	}
	checkCommented(t, exampleConfig)
}

// nilEmpty makes empty id lists nil, as in Default ("[]" decodes to an empty slice).
func nilEmpty(c Config) Config {
	for _, ids := range []*[]int64{&c.Telegram.AdminIDs, &c.Telegram.AllowedUserIDs, &c.Telegram.AllowedChatIDs} {
		if len(*ids) == 0 {
			*ids = nil
		}
	}
	return c
}

// checkCommented fails for every key line whose line above is no comment.
func checkCommented(t testing.TB, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	prev, inString := "", false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		isKey := !inString && line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "[") && strings.Contains(line, "=")
		if isKey && !strings.HasPrefix(prev, "#") {
			t.Errorf("%s: key line %q has no comment above it", path, line)
		}
		if strings.Count(line, `"""`)%2 == 1 {
			inString = !inString
		}
		prev = line
	}
}

// exampleConfig is the documented example at the repository's top.
var exampleConfig = filepath.Join("..", "..", "config.toml.example")

// TestDefaultSamplingIsTheCard: the shipped sampling is ruDialoGPT's model card's.
func TestDefaultSamplingIsTheCard(t *testing.T) {
	want := sample.SamplingParams{Temperature: 1.2, TopK: 10, TopP: 0.95, RepetitionPenalty: 1.2,
		NoRepeatNgram: 2, MinNewTokens: 1, MaxNewTokens: 40}
	if got := Default().Generation.Sampling(); got != want {
		t.Errorf("default sampling %+v, want %+v", got, want)
	}
	if err := want.Validate(); err != nil {
		t.Error(err)
	}
}
