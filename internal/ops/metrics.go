package ops

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dialogbot/dialogbot/bot"
	"github.com/dialogbot/dialogbot/model/dialog"
	"github.com/dialogbot/dialogbot/model/engine"
)

// Sources are the counters /metrics reads at each scrape. A nil field
// leaves its metrics out; Inbox returns ErrNotYet while there is no store
// to count (serve opens it after the model), which leaves the gauge out
// quietly.
type Sources struct {
	Bot    func() bot.Stats
	Inbox  func(context.Context) (bot.InboxDepth, error)
	Engine func() engine.EngineStats
}

// ErrNotYet is what Sources.Inbox returns before the store is open.
var ErrNotYet = errors.New("not started yet")

// depthTimeout bounds the store query of one scrape.
const depthTimeout = 5 * time.Second

// Metrics is serve's Prometheus registry.
type Metrics struct {
	reg      *prometheus.Registry
	latency  prometheus.Histogram
	failures prometheus.Counter
}

// NewMetrics registers the process and Go runtime metrics, whether the bot
// is ready, the counters of src and the generation latency (observed by
// the Replier that Timed returns).
func NewMetrics(h *Health, src Sources, log *slog.Logger) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dialogbot_generation_seconds",
			Help: "Time to generate one reply (the Replier call: queueing for a slot, prefill and decode).",
			// 50 ms to about 100 s: a warm GPU answers in tens of ms, a busy CPU in seconds.
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dialogbot_generation_failures_total",
			Help: "Replier calls that failed (timeout, engine busy or closed); the user got the apology.",
		}),
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.latency, m.failures,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dialogbot_ready",
			Help: "1 once the model is loaded and the Bot API answered (as /healthz), else 0."},
			func() float64 {
				if ok, _ := h.Ready(); ok {
					return 1
				}
				return 0
			}),
		&collector{src: src, log: log})
	return m
}

// Gatherer is what /metrics serves.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Timed wraps r so that each reply's generation time is observed.
func (m *Metrics) Timed(r bot.Replier) bot.Replier { return &timedReplier{next: r, m: m} }

type timedReplier struct {
	next bot.Replier
	m    *Metrics
}

func (t *timedReplier) Reply(ctx context.Context, chatID int64, turns []dialog.Turn) (string, error) {
	start := time.Now()
	text, err := t.next.Reply(ctx, chatID, turns)
	if err != nil {
		t.m.failures.Inc()
		return text, err
	}
	t.m.latency.Observe(time.Since(start).Seconds())
	return text, nil
}
