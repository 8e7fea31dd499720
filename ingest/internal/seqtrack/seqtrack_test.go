package seqtrack

import "testing"

func TestTracker(t *testing.T) {
	var tr Tracker
	tr.MaxJump = 1 << 16
	// In order, then 5 and 4 swapped: no loss.
	for _, s := range []uint32{1, 2, 3, 5, 4, 6} {
		if lost, restart := tr.Observe(s, 1); lost != 0 || restart {
			t.Fatalf("seq %d: lost %d restart %v", s, lost, restart)
		}
	}
	// 7 never comes: it counts as lost once enough later datagrams did.
	var lost uint64
	for s := uint32(8); s < 8+20; s++ {
		l, _ := tr.Observe(s, 1)
		lost += l
	}
	if lost != 1 || tr.Lost != 1 {
		t.Fatalf("lost %d (total %d), want 1", lost, tr.Lost)
	}
	// A jump far back is a restart, not loss.
	if l, restart := tr.Observe(4000000000, 1); !restart || l != 0 || tr.Restarts != 1 {
		t.Fatalf("restart: lost %d restart %v restarts %d", l, restart, tr.Restarts)
	}
}
