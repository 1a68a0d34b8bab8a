package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/dialogbot/dialogbot/model/sample"
)

// slotStepper is the least a scheduler needs that does not step: it
// records which slots were reset.
type slotStepper struct{ resets []int }

func (m *slotStepper) Step(StepInput, *StepOutput) error { return errors.New("no steps here") }
func (m *slotStepper) Logits([]int32, []float32) ([]float32, error) {
	return nil, errors.New("no logits")
}
func (m *slotStepper) SetLength(slot, n int) error {
	if n == 0 {
		m.resets = append(m.resets, slot)
	}
	return nil
}
func (m *slotStepper) CopySlot(int, int) error { return nil }
func (m *slotStepper) Vocab() int              { return 10 }
func (m *slotStepper) Slots() int              { return 2 }
func (m *slotStepper) Capacity() int           { return 64 }

// A job that fails after one of its candidates finished must not free that
// candidate's old slot: by then it may hold another chat's sequence (seen as
// a timeout with candidates still running, while a new chat took the slot).
func TestFailLeavesSlotsOfOtherJobsAlone(t *testing.T) {
	m := &slotStepper{}
	s := newScheduler(&Engine{model: m, opts: EngineOptions{PrefillChunk: 8}})
	newJob := func(candidates int) *job {
		return &job{req: Request{Prompt: []int{1, 2}, Params: cardSampling(), Candidates: candidates},
			ctx: context.Background(), done: make(chan jobResult, 1)}
	}
	first := newJob(2)
	s.waiting = []*job{first}
	s.admit()
	if len(first.seqs) != 2 || first.seqs[0].slot != 0 || first.seqs[1].slot != 1 {
		t.Fatalf("first job not admitted to slots 0 and 1")
	}
	s.prefilling = nil
	s.retire(first.seqs[0]) // candidate 0 done: slot 0 is free again
	second := newJob(1)
	s.waiting = []*job{second}
	s.admit()
	if len(second.seqs) != 1 || second.seqs[0].slot != 0 {
		t.Fatalf("second job did not get slot 0")
	}
	m.resets = nil
	s.fail(first, errors.New("timed out"))
	if s.free[0] || len(m.resets) != 1 || m.resets[0] != 1 {
		t.Errorf("failing the first job reset slots %v and left slot 0 free=%v; want only slot 1 reset", m.resets, s.free[0])
	}
	if res := <-first.done; res.err == nil {
		t.Error("the failed job got no error")
	}
}

// CardSampling lets the external tests (package engine_test) use it too.
var CardSampling = cardSampling

// cardSampling is the sampling of ruDialoGPT's model card (the shipped
// config's), as test input.
func cardSampling() sample.SamplingParams {
	return sample.SamplingParams{Temperature: 1.2, TopK: 10, TopP: 0.95, RepetitionPenalty: 1.2,
		NoRepeatNgram: 2, MinNewTokens: 1, MaxNewTokens: 40}
}
