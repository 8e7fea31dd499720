package admit

import (
	"testing"
	"time"
)

// A storm of new sources is admitted within the burst and then at the
// rate; once the table is full, sources on probation make room, oldest
// first, and established ones never do.
func TestGate(t *testing.T) {
	g := New[int](Config{Rate: 10, Burst: 5})
	table := map[int]bool{} // key → established
	evict := func(k int) bool {
		if est, ok := table[k]; !ok || est {
			return false
		}
		delete(table, k)
		return true
	}
	now := time.Unix(1_700_000_000, 0).UnixNano()
	admit := func(k int) Outcome {
		o := g.Admit(k, now, len(table), 4, evict)
		if o == Admitted {
			table[k] = false
		}
		return o
	}
	// Source 0 is established; 1..4 come in the burst, the table holds 4.
	if admit(0) != Admitted {
		t.Fatal("first source refused")
	}
	table[0] = true
	for k := 1; k <= 4; k++ {
		if o := admit(k); o != Admitted {
			t.Fatalf("source %d: outcome %d in the burst", k, o)
		}
	}
	if _, ok := table[1]; ok {
		t.Error("the oldest source on probation was not evicted when the table filled")
	}
	if !table[0] {
		t.Error("the established source was evicted")
	}
	// The burst is spent: refused for the rate until 100 ms have passed.
	if o := admit(5); o != Rate {
		t.Fatalf("outcome %d after the burst, want Rate", o)
	}
	now += int64(100 * time.Millisecond)
	if o := admit(5); o != Admitted {
		t.Fatalf("outcome %d after a token came back, want Admitted", o)
	}
	// All established: a new source finds no room.
	for k := range table {
		table[k] = true
	}
	now += int64(time.Second)
	if o := admit(6); o != TableFull {
		t.Fatalf("outcome %d with a table of established sources, want TableFull", o)
	}
	if g.RateRefused.Load() != 1 || g.TableFullRefused.Load() != 1 || g.Evicted.Load() != 2 {
		t.Errorf("counters: rate %d, table full %d, evicted %d; want 1, 1, 2",
			g.RateRefused.Load(), g.TableFullRefused.Load(), g.Evicted.Load())
	}
	g.Prune(func(k int) bool { est, ok := table[k]; return ok && !est })
	if n := g.OnProbation(); n != 0 {
		t.Errorf("%d sources on probation after pruning established ones", n)
	}
}

// A clock that goes back earns no tokens, and a negative rate admits all.
func TestGateClock(t *testing.T) {
	g := New[int](Config{Rate: 1, Burst: 1})
	never := func(int) bool { return false }
	now := int64(10 * time.Second)
	if g.Admit(1, now, 0, 10, never) != Admitted || g.Admit(2, now-int64(time.Hour), 1, 10, never) != Rate {
		t.Error("a clock going back refilled the bucket")
	}
	free := New[int](Config{Rate: -1})
	for k := range 5000 {
		if free.Admit(k, now, k, 1<<20, never) != Admitted {
			t.Fatalf("source %d refused with no rate limit", k)
		}
	}
}
