package dataset

import (
	"errors"
	"reflect"
	"testing"

	"github.com/dialogbot/dialogbot/model/dialog"
)

func TestEncodeExample(t *testing.T) {
	enc := runeEncoder{}
	f := dialog.FormatRuDialoGPT
	ctx := []dialog.Turn{u("abcd"), b("ef"), u("gh")}
	// Token counts with runeEncoder: a turn is tag + " " + text + " ";
	// the cue 1; the target " " + reply + " " + tag.
	full := enc.Encode(f.PromptText(ctx)) // 7 + 5 + 5 + 1 = 18
	tests := []struct {
		name      string
		ctx       []dialog.Turn
		reply     string
		lim       Limits
		wantIDs   []int
		promptLen int
		err       error
	}{
		{"no limits", ctx, "ok", Limits{}, append(full, enc.Encode(" ok "+dialog.TagFirst)...), 18, nil},
		{"exactly fits", ctx, "ok", Limits{Context: 23, MaxNewTokens: 5}, append(full, enc.Encode(" ok "+dialog.TagFirst)...), 18, nil},
		{"oldest turn cut as serving cuts it", ctx, "ok", Limits{Context: 22, MaxNewTokens: 5},
			append(enc.Encode(f.PromptText(ctx[1:])), enc.Encode(" ok "+dialog.TagFirst)...), 11, nil},
		{"max turns", ctx, "ok", Limits{MaxTurns: 1},
			append(enc.Encode(f.PromptText(ctx[2:])), enc.Encode(" ok "+dialog.TagFirst)...), 6, nil},
		{"reply longer than the room left", ctx, "a much longer reply", Limits{Context: 23, MaxNewTokens: 5}, nil, 0, ErrTargetTooLong},
		{"newest turn alone too long", ctx, "ok", Limits{Context: 10, MaxNewTokens: 5}, nil, 0, dialog.ErrPromptTooLong},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ids, n, err := EncodeExample(enc, f, tc.ctx, tc.reply, tc.lim)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if !reflect.DeepEqual(ids, tc.wantIDs) || n != tc.promptLen {
				t.Errorf("got %v (prompt %d), want %v (prompt %d)", ids, n, tc.wantIDs, tc.promptLen)
			}
		})
	}
}

func TestLossMask(t *testing.T) {
	if got, want := LossMask(5, 3), []uint8{0, 0, 0, 1, 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("LossMask(5, 3) = %v, want %v", got, want)
	}
}

func TestKeptTurns(t *testing.T) {
	enc := runeEncoder{}
	ctx := []dialog.Turn{u("abcd"), b("ef"), u("gh")}
	ids, n, err := EncodeExample(enc, dialog.FormatRuDialoGPT, ctx, "ok", Limits{Context: 22, MaxNewTokens: 5})
	if err != nil || len(ids) == 0 {
		t.Fatal(err)
	}
	if got := keptTurns(enc, dialog.FormatRuDialoGPT, ctx, n); !reflect.DeepEqual(got, ctx[1:]) {
		t.Errorf("kept %v, want %v", got, ctx[1:])
	}
}
