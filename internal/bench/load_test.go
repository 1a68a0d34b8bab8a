package bench

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestStartLoadKeepsThreadsBusy: while the load runs, this process uses
// CPU time although the test itself sleeps; stop ends it and gives the
// GOMAXPROCS slots back (stop waits for the spinners to return).
func TestStartLoadKeepsThreadsBusy(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	before := cpuTime(t)
	stop := startLoad(1)
	if got := runtime.GOMAXPROCS(0); got != procs+1 {
		t.Errorf("GOMAXPROCS %d during the load, want %d", got, procs+1)
	}
	time.Sleep(300 * time.Millisecond)
	stop()
	// One busy thread for 300 ms; a shared machine may give it less than
	// all of a core, but an idle process would use next to nothing.
	if used := cpuTime(t) - before; used < 60*time.Millisecond {
		t.Errorf("the load used %v of CPU in 300 ms", used)
	}
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("GOMAXPROCS %d after stop, want %d", got, procs)
	}
}
