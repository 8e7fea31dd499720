package window

// ClaimsHeld returns how many claims s holds, for tests.
func ClaimsHeld(s *MemoryStore) int {
	s.claimMu.Lock()
	defer s.claimMu.Unlock()
	return len(s.claims)
}
