package bench

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// spinSink keeps the busy loops' work observable, so the compiler keeps it.
var spinSink atomic.Int64

// startLoad makes n threads of this process busy until stop is called, to
// measure generation while other work competes for the CPU (bench --load):
// a shared server rarely has its cores to itself, and OpenMP's thread
// count and wait policy behave very differently then (docs/cpu.md). Each
// spinner is a goroutine locked to its own OS thread with its own
// GOMAXPROCS slot, so to the kernel's scheduler it is one more busy
// process, and the engine's goroutines keep the slots they had.
func startLoad(n int) (stop func()) {
	if n <= 0 {
		return func() {}
	}
	prev := runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(prev + n)
	var quit atomic.Bool
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			x := int64(0)
			for !quit.Load() {
				for j := range int64(1 << 16) {
					x += j ^ x>>3
				}
			}
			spinSink.Add(x)
		}()
	}
	return func() {
		quit.Store(true)
		wg.Wait()
		runtime.GOMAXPROCS(prev)
	}
}
