package main

import (
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/mymmrac/telego"

	"github.com/dialogbot/dialogbot/internal/config"
	"github.com/dialogbot/dialogbot/internal/pgtest"
	"github.com/dialogbot/dialogbot/internal/telegramtest"
	"github.com/dialogbot/dialogbot/internal/testmodel"
)

const replicaSecret = "replica-secret"

// replicaConfig is serve's config for one replica in webhook mode on the
// shared PostgreSQL database, with a short claim TTL so that a dead
// replica's chats are taken over within seconds.
func replicaConfig(t *testing.T, apiURL, model, dbURL, listen string) string {
	return processConfig(t, apiURL, listen, tinyModelSections(model)+fmt.Sprintf(`
[storage]
path = %q
url = %q
claim_ttl = "2s"
`, filepath.Join(t.TempDir(), "unused.db"), dbURL))
}

// replicaSetup is what the replica tests share: tiny-gpt2 exported, a
// throwaway PostgreSQL, the fake Bot API and serve's log.
func replicaSetup(t *testing.T) (model, dbURL string, api *telegramtest.Server, log *telegramtest.SyncBuffer) {
	t.Helper()
	testmodel.RequireBridge(t)
	model = testmodel.Export(t, "tiny-gpt2")
	dbURL = pgtest.Start(t)
	t.Setenv(config.TokenEnv, telegramtest.Token)
	return model, dbURL, telegramtest.New(t), serveLog(t)
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// postUpdate delivers a message to the replica listening at addr.
func postUpdate(addr string, id int, m *telego.Message) error {
	return telegramtest.PostWebhook("http://"+addr+"/hook", replicaSecret, id, m)
}

// TestServeReplicasSurviveKill: two serve processes in webhook mode share a
// PostgreSQL inbox behind a balancer that alternates between them and, like
// Telegram, sends an update to the other when a delivery fails. 100
// messages over 20 chats; one replica is killed with SIGKILL while
// replying. Every message is answered once, each chat in order.
func TestServeReplicasSurviveKill(t *testing.T) {
	model, dbURL, api, log := replicaSetup(t)
	addrs := []string{freeAddr(t), freeAddr(t)}
	children := []*child{
		startChild(t, replicaConfig(t, api.URL, model, dbURL, addrs[0]), log),
		startChild(t, replicaConfig(t, api.URL, model, dbURL, addrs[1]), log),
	}
	// Each replica registers its webhook once it listens.
	for api.CallCount("setWebhook") < 2 {
		time.Sleep(10 * time.Millisecond) // orders the test only; a hang ends in the test's timeout
	}
	msgs := crashTraffic(20, 100)
	up := []bool{true, true}
	for i, m := range msgs {
		if i == 50 {
			api.WaitAllSent(t, 30)
			children[0].kill(t)
			up[0] = false
		}
		target := i % 2
		if !up[target] {
			target = 1 - target
		}
		if err := postUpdate(addrs[target], i+1, m); err != nil {
			t.Fatalf("delivering update %d: %v", i+1, err)
		}
	}
	// A chat is answered in order, so once its last message (sent after
	// the kill) is answered, each earlier one was handled: answered, or
	// lost in flight at the kill (report tells them apart).
	for _, m := range lastOfEachChat(msgs) {
		waitAnswer(t, api, m)
	}
	children[1].term(t)
	r := report(api, msgs, log)
	r.check(t, len(msgs))
	t.Logf("two replicas, one killed after 30 answers: %+v", r)
}

// TestServeReplicaStallsPastItsClaims: a replica alone on the shared inbox
// is stopped (SIGSTOP, as a starved CPU or a long GC pause would) for longer
// than its claims live, then goes on. No other replica took its chats, so
// they are still its own: every message is answered, once, in order. Before,
// it renewed only live claims and never claimed its own expired ones again,
// so the chats it held at the stall were answered by no one.
func TestServeReplicaStallsPastItsClaims(t *testing.T) {
	model, dbURL, api, log := replicaSetup(t)
	addr := freeAddr(t)
	c := startChild(t, replicaConfig(t, api.URL, model, dbURL, addr), log)
	for api.CallCount("setWebhook") < 1 {
		time.Sleep(10 * time.Millisecond) // orders the test only; a hang ends in the test's timeout
	}
	msgs := crashTraffic(10, 40)
	for i, m := range msgs {
		if i == 20 {
			api.WaitAllSent(t, 10)
			c.stall(t, 3*time.Second) // the claims live 2s
		}
		if err := postUpdate(addr, i+1, m); err != nil {
			t.Fatalf("delivering update %d: %v", i+1, err)
		}
	}
	for _, m := range msgs {
		waitAnswer(t, api, m)
	}
	c.term(t)
	r := report(api, msgs, log)
	r.check(t, len(msgs))
	t.Logf("one replica stalled past its claims: %+v", r)
}

// lastOfEachChat is the newest message of each chat among msgs.
func lastOfEachChat(msgs []*telego.Message) []*telego.Message {
	last := map[int64]*telego.Message{}
	var order []int64
	for _, m := range msgs {
		if _, ok := last[m.Chat.ID]; !ok {
			order = append(order, m.Chat.ID)
		}
		last[m.Chat.ID] = m
	}
	out := make([]*telego.Message, 0, len(order))
	for _, id := range order {
		out = append(out, last[id])
	}
	return out
}
