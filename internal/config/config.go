package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/dialogbot/dialogbot/model/dialog"
	"github.com/dialogbot/dialogbot/model/sample"

	"github.com/BurntSushi/toml"
)

// Config is dialogbot's configuration: defaults, then a TOML file, then the
// TELEGRAM_BOT_TOKEN environment variable, then Validate. Key names are
// fixed: other tools read telegram.token, telegram.api_url,
// telegram.admin_ids, telegram.mode, model.path, model.device, storage.path.
type Config struct {
	Telegram   TelegramConfig   `toml:"telegram"`
	Model      ModelConfig      `toml:"model"`
	Generation GenerationConfig `toml:"generation"`
	Storage    StorageConfig    `toml:"storage"`
	Bot        BotConfig        `toml:"bot"`
}

// TelegramConfig is how the bot reaches Telegram, who may use it and what it says.
type TelegramConfig struct {
	Token         string  `toml:"token"`
	APIURL        string  `toml:"api_url"`
	AdminIDs      []int64 `toml:"admin_ids"`
	Mode          string  `toml:"mode"`
	WebhookListen string  `toml:"webhook_listen"`
	WebhookPath   string  `toml:"webhook_path"`
	WebhookURL    string  `toml:"webhook_url"`
	WebhookSecret string  `toml:"webhook_secret"`
	// WebhookMaxConnections is setWebhook's max_connections: how many
	// connections Telegram opens at once to deliver updates (1-100).
	WebhookMaxConnections int     `toml:"webhook_max_connections"`
	AllowedUserIDs        []int64 `toml:"allowed_user_ids"`
	AllowedChatIDs        []int64 `toml:"allowed_chat_ids"`
	Greeting              string  `toml:"greeting"`
	Help                  string  `toml:"help"`
	Apology               string  `toml:"apology"`
	TooLong               string  `toml:"too_long"`
	NonTextReply          string  `toml:"non_text_reply"`
	ResetReply            string  `toml:"reset_reply"`
}

// ModelConfig is which model to load and where it runs.
type ModelConfig struct {
	Path       string `toml:"path"`
	Device     Device `toml:"device"`
	DType      DType  `toml:"dtype"`
	Threads    int    `toml:"threads"`
	Slots      int    `toml:"slots"`
	MaxContext int    `toml:"max_context"`
	// PromptFormat overrides the format in the model's dialogbot.json ("" keeps it).
	PromptFormat string `toml:"prompt_format"`
}

// GenerationConfig is how replies are sampled.
type GenerationConfig struct {
	MaxNewTokens      int           `toml:"max_new_tokens"`
	MinNewTokens      int           `toml:"min_new_tokens"`
	Temperature       float64       `toml:"temperature"`
	TopK              int           `toml:"top_k"`
	TopP              float64       `toml:"top_p"`
	RepetitionPenalty float64       `toml:"repetition_penalty"`
	NoRepeatNgramSize int           `toml:"no_repeat_ngram_size"`
	Candidates        int           `toml:"candidates"`
	Seed              int64         `toml:"seed"`
	FallbackReply     string        `toml:"fallback_reply"`
	Timeout           time.Duration `toml:"timeout"`
}

// StorageConfig is where chat histories and settings live.
type StorageConfig struct {
	Path string `toml:"path"`
	// URL, when set (postgres://...), selects PostgreSQL instead of the
	// SQLite file at Path; replicas of serve share it.
	URL string `toml:"url"`
	// ClaimTTL is how long a replica holds a chat without renewing its
	// claim (PostgreSQL only): how soon a dead replica's chats are taken over.
	ClaimTTL time.Duration `toml:"claim_ttl"`
}

// BotConfig tunes the bot's behaviour and its sending limits.
type BotConfig struct {
	GroupChance     int           `toml:"group_chance"`
	HistoryTurns    int           `toml:"history_turns"`
	ChatPerSecond   float64       `toml:"chat_per_second"`
	GroupPerMinute  float64       `toml:"group_per_minute"`
	GlobalPerSecond float64       `toml:"global_per_second"`
	MaxConcurrent   int           `toml:"max_concurrent"`
	QueueSize       int           `toml:"queue_size"`
	ShutdownGrace   time.Duration `toml:"shutdown_grace"`
	// SendDeadline bounds the retries of one message; then it is dropped and
	// the user gets the apology.
	SendDeadline time.Duration `toml:"send_deadline"`
}

// Default is the configuration before any file is read.
func Default() Config {
	return Config{
		Telegram: TelegramConfig{
			APIURL:                "https://api.telegram.org",
			Mode:                  "polling",
			WebhookListen:         "127.0.0.1:8443",
			WebhookMaxConnections: 40,
			WebhookPath:           "/telegram",
			Greeting:              "Привет! Я бот-собеседник. Просто напиши мне что-нибудь.",
			Help:                  "Я отвечаю на сообщения. В группах упомяни меня или ответь на моё сообщение.\n/reset - забыть наш разговор\n/chance N - (админы группы) вмешиваться в разговор с вероятностью N%",
			Apology:               "Извини, что-то пошло не так. Попробуй ещё раз позже.",
			TooLong:               "Извини, это сообщение для меня слишком длинное.",
			NonTextReply:          "Я понимаю только текст.",
			ResetReply:            "Хорошо, я забыл наш разговор.",
		},
		Model: ModelConfig{Device: "auto", DType: "auto", Slots: 24, MaxContext: 512},
		Generation: GenerationConfig{
			MaxNewTokens: 40, MinNewTokens: 1, Temperature: 1.2, TopK: 10, TopP: 0.95,
			RepetitionPenalty: 1.2, NoRepeatNgramSize: 2, Candidates: 3, Seed: 0,
			FallbackReply: "Хм, даже не знаю, что ответить.", Timeout: 30 * time.Second,
		},
		Storage: StorageConfig{Path: "dialogbot.db", ClaimTTL: 15 * time.Second},
		Bot: BotConfig{
			GroupChance: 0, HistoryTurns: 12, ChatPerSecond: 1, GroupPerMinute: 20, GlobalPerSecond: 30,
			MaxConcurrent: 16, QueueSize: 32, ShutdownGrace: 3 * time.Second, SendDeadline: time.Minute,
		},
	}
}

// TokenEnv overrides telegram.token, so the token can stay out of files.
const TokenEnv = "TELEGRAM_BOT_TOKEN"

// Load reads the config at path over the defaults (path "" = defaults
// only), applies TELEGRAM_BOT_TOKEN and validates the result.
func Load(path string) (Config, error) {
	cfg := Default()
	if path != "" {
		var secrets struct {
			Telegram struct {
				Token string `toml:"token"`
			} `toml:"telegram"`
			Storage struct {
				URL string `toml:"url"`
			} `toml:"storage"`
		}
		if _, err := toml.DecodeFile(path, &secrets); err == nil && (secrets.Telegram.Token != "" || hasPassword(secrets.Storage.URL)) {
			if err := checkPrivate(path); err != nil {
				return Config{}, err
			}
		}
		md, err := toml.DecodeFile(path, &cfg)
		if err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			return Config{}, fmt.Errorf("config %s: %w", path, unknownKey(und[0].String()))
		}
	}
	if tok := os.Getenv(TokenEnv); tok != "" {
		cfg.Telegram.Token = tok
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

func hasPassword(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return false
	}
	_, ok := u.User.Password()
	return ok
}

// checkPrivate refuses a config file holding the bot token (or a database
// password) that others may read: whoever has the token is the bot.
func checkPrivate(path string) error {
	if runtime.GOOS == "windows" {
		return nil // no Unix modes; the folder's ACL decides
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if mode := st.Mode().Perm(); mode&0o077 != 0 {
		return fmt.Errorf("config %s holds a secret (telegram.token or a storage.url password) and others can access it "+
			"(mode %04o): run `chmod 600 %s`, or keep the token in %s instead", path, mode, path, TokenEnv)
	}
	return nil
}

// removedKeys are keys of earlier versions, with what replaced them.
var removedKeys = map[string]string{
	"generation.max_turns": "the conversation window is bot.history_turns alone",
}

func unknownKey(key string) error {
	if why, ok := removedKeys[key]; ok {
		return fmt.Errorf("%s was removed (%s): delete it", key, why)
	}
	return fmt.Errorf("unknown key %q", key)
}

// Validate reports every value that cannot work, each naming its key. The
// token's format is checked by ValidateToken, only where a token is needed.
func (c Config) Validate() error {
	return errors.Join(c.Telegram.validate(), c.Model.validate(), c.Generation.validate(),
		c.Storage.validate(), c.Bot.validate())
}

// tokenPattern is the shape of a bot token (the one telego checks too).
var tokenPattern = regexp.MustCompile(`^\d+:[\w-]{35}$`)

// ValidateToken checks that a bot token is set and well formed; the message
// never repeats the token.
func (c Config) ValidateToken() error {
	switch {
	case c.Telegram.Token == "":
		return fmt.Errorf("telegram.token: not set (set %s or telegram.token)", TokenEnv)
	case !tokenPattern.MatchString(c.Telegram.Token):
		return fmt.Errorf("telegram.token: not a bot token (want digits, a colon and 35 letters, digits, _ or -)")
	}
	return nil
}

func (t TelegramConfig) validate() error {
	var errs []error
	if u, err := url.Parse(t.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("telegram.api_url: %q is not an http(s) URL", t.APIURL))
	}
	if t.WebhookMaxConnections < 1 || t.WebhookMaxConnections > 100 {
		errs = append(errs, fmt.Errorf("telegram.webhook_max_connections: %d (want 1 to 100)", t.WebhookMaxConnections))
	}
	switch t.Mode {
	case "polling":
	case "webhook":
		errs = append(errs, t.validateWebhook()...)
	default:
		errs = append(errs, fmt.Errorf("telegram.mode: %q (want \"polling\" or \"webhook\")", t.Mode))
	}
	return errors.Join(errs...)
}

func (t TelegramConfig) validateWebhook() []error {
	var errs []error
	for _, kv := range [][2]string{{"webhook_listen", t.WebhookListen}, {"webhook_url", t.WebhookURL}, {"webhook_secret", t.WebhookSecret}} {
		if kv[1] == "" {
			errs = append(errs, fmt.Errorf("telegram.%s: needed in webhook mode", kv[0]))
		}
	}
	if !strings.HasPrefix(t.WebhookPath, "/") {
		errs = append(errs, fmt.Errorf("telegram.webhook_path: %q must start with /", t.WebhookPath))
	}
	// Telegram's own rule for secret_token: 1-256 of A-Z, a-z, 0-9, _ and -.
	if t.WebhookSecret != "" && !webhookSecretPattern.MatchString(t.WebhookSecret) {
		errs = append(errs, errors.New("telegram.webhook_secret: 1-256 characters of A-Z, a-z, 0-9, _ and -"))
	}
	return errs
}

var webhookSecretPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

func (m ModelConfig) validate() error {
	var errs []error
	if _, err := ParseDevice(string(m.Device)); err != nil {
		errs = append(errs, fmt.Errorf("model.device: %w", err))
	}
	if _, err := ParseDType(string(m.DType)); err != nil {
		errs = append(errs, fmt.Errorf("model.dtype: %w", err))
	}
	if m.PromptFormat != "" {
		if _, err := dialog.ParseFormat(m.PromptFormat); err != nil {
			errs = append(errs, fmt.Errorf("model.prompt_format: %w", err))
		}
	}
	errs = append(errs, atLeast("model.threads", m.Threads, 0), atLeast("model.slots", m.Slots, 1),
		atLeast("model.max_context", m.MaxContext, 0))
	return errors.Join(errs...)
}

func (g GenerationConfig) validate() error {
	errs := []error{
		atLeast("generation.max_new_tokens", g.MaxNewTokens, 1),
		atLeast("generation.min_new_tokens", g.MinNewTokens, 0),
		atLeast("generation.top_k", g.TopK, 0),
		atLeast("generation.no_repeat_ngram_size", g.NoRepeatNgramSize, 0),
		atLeast("generation.candidates", g.Candidates, 1),
	}
	if g.MinNewTokens > g.MaxNewTokens {
		errs = append(errs, fmt.Errorf("generation.min_new_tokens: %d is above max_new_tokens %d", g.MinNewTokens, g.MaxNewTokens))
	}
	if !(g.Temperature > 0) {
		errs = append(errs, fmt.Errorf("generation.temperature: %g (want above 0; `chat --greedy` gives the most likely reply)", g.Temperature))
	}
	if g.TopP <= 0 || g.TopP > 1 {
		errs = append(errs, fmt.Errorf("generation.top_p: %g (want above 0, at most 1)", g.TopP))
	}
	if g.RepetitionPenalty <= 0 {
		errs = append(errs, fmt.Errorf("generation.repetition_penalty: %g (want above 0; 1 = none)", g.RepetitionPenalty))
	}
	if g.Seed < 0 {
		errs = append(errs, fmt.Errorf("generation.seed: %d is negative (0 = random)", g.Seed))
	}
	if g.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("generation.timeout: %v (want a positive duration such as \"30s\")", g.Timeout))
	}
	return errors.Join(errs...)
}

// Sampling is how the generation settings sample each token.
func (g GenerationConfig) Sampling() sample.SamplingParams {
	return sample.SamplingParams{
		Temperature: g.Temperature, TopK: g.TopK, TopP: g.TopP,
		RepetitionPenalty: g.RepetitionPenalty, NoRepeatNgram: g.NoRepeatNgramSize,
		MinNewTokens: g.MinNewTokens, MaxNewTokens: g.MaxNewTokens,
	}
}

func (s StorageConfig) validate() error {
	if s.ClaimTTL < 2*time.Second {
		return fmt.Errorf("storage.claim_ttl: %v (want at least 2s: claims are renewed every second)", s.ClaimTTL)
	}
	if s.URL != "" {
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
			return errors.New("storage.url: want a postgres://user@host/database URL")
		}
		return nil
	}
	if s.Path == "" {
		return errors.New("storage.path: empty")
	}
	return nil
}

func (b BotConfig) validate() error {
	errs := []error{
		atLeast("bot.history_turns", b.HistoryTurns, 1),
		atLeast("bot.max_concurrent", b.MaxConcurrent, 1),
		atLeast("bot.queue_size", b.QueueSize, 1),
	}
	if b.GroupChance < 0 || b.GroupChance > 100 {
		errs = append(errs, fmt.Errorf("bot.group_chance: %d (want a percent, 0 to 100)", b.GroupChance))
	}
	rates := []struct {
		key string
		v   float64
	}{{"chat_per_second", b.ChatPerSecond}, {"group_per_minute", b.GroupPerMinute}, {"global_per_second", b.GlobalPerSecond}}
	for _, r := range rates {
		if r.v <= 0 {
			errs = append(errs, fmt.Errorf("bot.%s: %g (want above 0)", r.key, r.v))
		}
	}
	if b.SendDeadline <= 0 {
		errs = append(errs, fmt.Errorf("bot.send_deadline: %v (want a positive duration such as \"60s\")", b.SendDeadline))
	}
	if b.ShutdownGrace <= 0 {
		errs = append(errs, fmt.Errorf("bot.shutdown_grace: %v (want a positive duration such as \"3s\")", b.ShutdownGrace))
	}
	return errors.Join(errs...)
}

func atLeast(key string, v, lowest int) error {
	if v < lowest {
		return fmt.Errorf("%s: %d (want at least %d)", key, v, lowest)
	}
	return nil
}
