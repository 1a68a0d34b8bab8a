package ops

import (
	"context"
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// collector turns the bot's and the engine's counters into metrics at
// scrape time: they stay plain atomics in their packages.
type collector struct {
	src Sources
	log *slog.Logger
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	updatesDesc    = desc("dialogbot_updates_received_total", "Updates accepted into the inbox (not counting duplicates).")
	duplicatesDesc = desc("dialogbot_updates_duplicate_total", "Updates refused because their id was in the inbox already (Telegram's or a balancer's redelivery).")
	resumedDesc    = desc("dialogbot_updates_resumed_total", "Unfinished updates taken up again at start.")
	sentDesc       = desc("dialogbot_replies_sent_total", "Messages Telegram confirmed.")
	retriesDesc    = desc("dialogbot_send_retries_total", "sendMessage attempts repeated after a failure Telegram surely did not act on.")
	dropsDesc      = desc("dialogbot_drops_total", "Messages not delivered, or perhaps not, by cause: "+
		"send_failed (given up after bot.send_deadline or refused by Telegram), "+
		"queue_overflow (an update kept as context only: its chat's queue was full), "+
		"crash_in_flight (a send found in flight after a crash, taken as sent: it may be lost).", "cause")
	ambiguousDesc = desc("dialogbot_replies_ambiguous_total", "Sends whose request reached Telegram and whose answer was lost: taken as sent.")
	inboxDesc     = desc("dialogbot_inbox_updates", "Updates in the inbox by state: waiting (no answer yet), "+
		"answered (answer generated, not all sent), finished (kept until pruned, to refuse redeliveries). "+
		"With PostgreSQL, the whole shared inbox.", "state")
	tokensDesc       = desc("dialogbot_generated_tokens_total", "Tokens generated (rate() of it is tokens/s).")
	promptDesc       = desc("dialogbot_prompt_tokens_total", "Prompt tokens asked for.")
	reusedPromptDesc = desc("dialogbot_prompt_reused_tokens_total", "Prompt tokens found in a chat's cached prompt, which no step had to run (reused share = this / dialogbot_prompt_tokens_total).")
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{updatesDesc, duplicatesDesc, resumedDesc, sentDesc, retriesDesc,
		dropsDesc, ambiguousDesc, inboxDesc, tokensDesc, promptDesc, reusedPromptDesc} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if c.src.Bot != nil {
		st := c.src.Bot()
		counter(updatesDesc, st.Received)
		counter(duplicatesDesc, st.Duplicates)
		counter(resumedDesc, st.Resumed)
		counter(sentDesc, st.Sent)
		counter(retriesDesc, st.Retries)
		counter(dropsDesc, st.Dropped, "send_failed")
		counter(dropsDesc, st.Overflowed, "queue_overflow")
		counter(dropsDesc, st.Crashed, "crash_in_flight")
		counter(ambiguousDesc, st.Ambiguous)
	}
	if c.src.Engine != nil {
		st := c.src.Engine()
		counter(tokensDesc, st.Tokens)
		counter(promptDesc, st.PromptTokens)
		counter(reusedPromptDesc, st.ReusedTokens)
	}
	if c.src.Inbox != nil {
		c.collectInbox(ch)
	}
}

func (c *collector) collectInbox(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), depthTimeout)
	defer cancel()
	d, err := c.src.Inbox(ctx)
	if errors.Is(err, ErrNotYet) {
		return
	}
	if err != nil {
		c.log.Warn("counting the inbox for /metrics failed", "err", err)
		ch <- prometheus.NewInvalidMetric(inboxDesc, err)
		return
	}
	for state, v := range map[string]int64{"waiting": d.Waiting, "answered": d.Answered, "finished": d.Finished} {
		ch <- prometheus.MustNewConstMetric(inboxDesc, prometheus.GaugeValue, float64(v), state)
	}
}
