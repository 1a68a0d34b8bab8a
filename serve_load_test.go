package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dialogbot/dialogbot/internal/config"
	"github.com/dialogbot/dialogbot/internal/pgtest"
	"github.com/dialogbot/dialogbot/internal/telegramtest"
	"github.com/dialogbot/dialogbot/internal/testmodel"
)

// loadEnv turns on TestServeReplicaLoad, a measurement of minutes:
// DIALOGBOT_REPLICA_LOAD=1 (or CHATSxMESSAGES, default 200x5).
// threadsEnv is model.threads of the one replica and of each of the two,
// "ONE,EACH" (default "1,1": each replica as on a one-core machine of its
// own; "2,1" gives the one replica both cores of this machine).
const (
	loadEnv    = "DIALOGBOT_REPLICA_LOAD"
	threadsEnv = "DIALOGBOT_REPLICA_THREADS"
)

// TestServeReplicaLoad is issue 14's acceptance measurement: CHATS x
// MESSAGES group messages (each mentioning the bot, so each answer names the
// message it answers) posted in webhook mode through a round-robin balancer
// to one serve replica, then to two, on PostgreSQL, with nano-ru on the CPU,
// one thread per replica. Every message must be answered once and each chat
// in order; /metrics of every replica is scraped before, halfway and after.
// The two replicas share this machine's cores with the PostgreSQL server,
// the fake Bot API and the test.
// It logs the throughput of each run and their ratio (docs/reliability.md).
//
//	DIALOGBOT_REPLICA_LOAD=1 make test-go GO_TEST_FLAGS='-run TestServeReplicaLoad -v -timeout 60m'
func TestServeReplicaLoad(t *testing.T) {
	spec := os.Getenv(loadEnv)
	if spec == "" {
		t.Skipf("a measurement of minutes: set %s=1 (or CHATSxMESSAGES) to run it", loadEnv)
	}
	chats, perChat := 200, 5
	if spec != "1" {
		if _, err := fmt.Sscanf(spec, "%dx%d", &chats, &perChat); err != nil || chats < 1 || perChat < 1 {
			t.Fatalf("%s=%q: want 1 or CHATSxMESSAGES", loadEnv, spec)
		}
	}
	threads := [2]int{1, 1}
	if v := os.Getenv(threadsEnv); v != "" {
		if _, err := fmt.Sscanf(v, "%d,%d", &threads[0], &threads[1]); err != nil || threads[0] < 1 || threads[1] < 1 {
			t.Fatalf("%s=%q: want ONE,EACH such as 2,1", threadsEnv, v)
		}
	}
	testmodel.RequireBridge(t)
	model := testmodel.Export(t, "nano-ru")
	t.Setenv(config.TokenEnv, telegramtest.Token)
	var rates []float64
	for i, n := range []int{1, 2} {
		t.Run(fmt.Sprintf("replicas=%d,threads=%d", n, threads[i]), func(t *testing.T) {
			rates = append(rates, replicaLoad(t, model, n, threads[i], chats, perChat))
		})
	}
	if len(rates) == 2 && rates[0] > 0 {
		t.Logf("two replicas against one: %.2fx (%.2f vs %.2f answers/s)", rates[1]/rates[0], rates[1], rates[0])
	}
}

// replicaLoad runs n replicas through the load and returns answers per
// second, from the first post to the last answer.
func replicaLoad(t *testing.T, model string, n, threads, chats, perChat int) float64 {
	dbURL := pgtest.Start(t)
	api := telegramtest.New(t)
	log := serveLog(t)
	var hooks, opsAddrs []string
	var children []*child
	for range n {
		hook, ops := freeAddr(t), freeAddr(t)
		hooks, opsAddrs = append(hooks, hook), append(opsAddrs, ops)
		children = append(children, startChild(t, loadConfig(t, api.URL, model, dbURL, hook, ops, threads), log))
	}
	for api.CallCount("setWebhook") < n {
		time.Sleep(50 * time.Millisecond) // orders the test only; a hang ends in the test's timeout
	}
	for _, ops := range opsAddrs {
		if code, body := httpGet(t, ops, "/healthz"); code != http.StatusOK {
			t.Fatalf("replica %s /healthz after setWebhook: %d %q", ops, code, body)
		}
	}
	lb := balancer(t, hooks)
	msgs := crashTraffic(chats, chats*perChat)
	before := scrapeAll(t, opsAddrs)
	start := time.Now()
	for i, m := range msgs {
		if err := postUpdate(lb, 100000+i, m); err != nil {
			t.Fatalf("delivering update %d: %v", i, err)
		}
	}
	posted := time.Since(start)
	api.WaitAllSent(t, len(msgs)/2)
	half := scrapeAll(t, opsAddrs)
	for _, m := range msgs {
		waitAnswer(t, api, m)
	}
	wall := time.Since(start)
	after := settled(t, opsAddrs, len(msgs))
	for _, c := range children {
		c.term(t)
	}
	r := report(api, msgs, log)
	r.check(t, len(msgs))
	rate := float64(len(msgs)) / wall.Seconds()
	t.Logf("%d replica(s), %d chats x %d messages: %+v; all posted in %v, all answered in %v: %.2f answers/s",
		n, chats, perChat, r, posted.Round(time.Millisecond), wall.Round(time.Millisecond), rate)
	checkMoving(t, before, half, after)
	return rate
}

// loadConfig is a replica's config for the measurement: nano-ru on the
// CPU, webhook mode, the shared PostgreSQL inbox, /metrics on ops.
func loadConfig(t *testing.T, apiURL, model, dbURL, hook, ops string, threads int) string {
	return processConfig(t, apiURL, hook, fmt.Sprintf(`
[model]
path = %q
device = "cpu"
threads = %d

[generation]
max_new_tokens = 20
fallback_reply = %q
timeout = "120s"

[storage]
url = %q
claim_ttl = "5s"

[ops]
listen = %q
`, model, threads, serveFallback, dbURL, ops))
}

// balancer is a round-robin reverse proxy over the replicas' webhooks, as a
// load balancer in front of them would be.
func balancer(t *testing.T, hooks []string) string {
	var proxies []*httputil.ReverseProxy
	for _, h := range hooks {
		proxies = append(proxies, httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: h}))
	}
	var next atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxies[int(next.Add(1)-1)%len(proxies)].ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return u.Host
}

// loadMetrics are the counters the measurement follows, summed over replicas.
var loadMetrics = []string{"dialogbot_updates_received_total", "dialogbot_replies_sent_total",
	"dialogbot_generated_tokens_total", "dialogbot_prompt_tokens_total", "dialogbot_prompt_reused_tokens_total",
	"dialogbot_generation_seconds_count", "dialogbot_generation_seconds_sum"}

func scrapeAll(t *testing.T, addrs []string) map[string]float64 {
	sum := map[string]float64{}
	for _, a := range addrs {
		m := scrape(t, a)
		for _, name := range loadMetrics {
			sum[name] += m[name]
		}
		// The inbox is shared: every replica counts all of it.
		sum["inbox_waiting"], sum["inbox_finished"] = m[`dialogbot_inbox_updates{state="waiting"}`], m[`dialogbot_inbox_updates{state="finished"}`]
	}
	return sum
}

// settled scrapes until every update is finished in the shared inbox: a
// replica counts a reply once Telegram's answer is back, a little after
// the fake Bot API recorded it. Polling is what Prometheus does too.
func settled(t *testing.T, addrs []string, n int) map[string]float64 {
	deadline := time.Now().Add(time.Minute)
	for {
		m := scrapeAll(t, addrs)
		if m["inbox_finished"] >= float64(n) || time.Now().After(deadline) {
			return m
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkMoving: the counters went up from before to halfway to after (all
// updates are received before halfway: they are posted first).
func checkMoving(t *testing.T, before, half, after map[string]float64) {
	t.Helper()
	for i, name := range loadMetrics[:4] {
		if !(before[name] < half[name] && (i == 0 || half[name] < after[name])) {
			t.Errorf("%s did not move: %v, %v, %v", name, before[name], half[name], after[name])
		}
	}
	if after["dialogbot_replies_sent_total"] < after["dialogbot_updates_received_total"] {
		t.Errorf("/metrics after the load: %v sent for %v received", after["dialogbot_replies_sent_total"], after["dialogbot_updates_received_total"])
	}
	for _, s := range []struct {
		label string
		m     map[string]float64
	}{{"before", before}, {"halfway", half}, {"after", after}} {
		line := s.label + ":"
		for _, name := range append(loadMetrics, "inbox_waiting", "inbox_finished") {
			line += " " + name + "=" + strconv.FormatFloat(s.m[name], 'f', -1, 64)
		}
		t.Log(line)
	}
	if c := after["dialogbot_generation_seconds_count"]; c > 0 {
		t.Logf("mean generation latency %.3f s; reused prompt share %.1f%%; %.0f tokens generated",
			after["dialogbot_generation_seconds_sum"]/c,
			100*after["dialogbot_prompt_reused_tokens_total"]/max(after["dialogbot_prompt_tokens_total"], 1),
			after["dialogbot_generated_tokens_total"])
	}
}
