package dialog

// Window is how much of a conversation the bot keeps and shows the model:
// at most MaxTurns turns. It is the one owner of that choice; the bot's store
// applies it when a turn is added, and nothing downstream cuts turns again
// (BuildPrompt cuts only to fit the model's context).
//
// When a chat goes over MaxTurns, its older turns go at once and the newest
// half stays. The prompt then keeps its start for the next MaxTurns/2
// messages, each prompt extending the last one, which lets the engine reuse
// the chat's cached prompt and run only the new tokens. A window sliding one
// turn at a time would change the start of every prompt and reuse nothing.
type Window struct {
	MaxTurns int
}

// Keep is how many of a chat's newest turns stay once it holds n turns.
func (w Window) Keep(n int) int {
	if w.MaxTurns <= 0 || n <= w.MaxTurns {
		return n
	}
	return max(1, w.MaxTurns/2)
}

// Apply returns the turns that stay of turns (the newest last).
func (w Window) Apply(turns []Turn) []Turn {
	return turns[len(turns)-w.Keep(len(turns)):]
}
