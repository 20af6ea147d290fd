package main

import (
	"context"
	"os"
	"time"
)

// parentPoll is how often watchParent looks at the parent process.
const parentPoll = 250 * time.Millisecond

// watchParent calls stop once the process that started us has died: the
// kernel then gives us a new parent (init or a subreaper), so the parent
// process id changes. Started directly by init (or as a container's first
// process) there is no parent to lose. Polling getppid works on every Unix
// and, unlike Linux's PR_SET_PDEATHSIG, is not fooled by the end of the
// parent's thread that forked us while the parent lives on.
func watchParent(ctx context.Context, stop func()) {
	parent := os.Getppid()
	if parent <= 1 {
		return
	}
	t := time.NewTicker(parentPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if os.Getppid() != parent {
				stop()
				return
			}
		}
	}
}
