package notifiers

import "testing"

// BenchmarkSpoolWriteRemove is one alert's disk work with a spool: encode,
// write to a temporary file, rename, and remove once delivered.
func BenchmarkSpoolWriteRemove(b *testing.B) {
	sp, _, err := openSpool(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	a := scanAlert()
	b.ReportAllocs()
	for b.Loop() {
		f, err := sp.write(a, 1<<40)
		if err != nil {
			b.Fatal(err)
		}
		if err := sp.remove(f); err != nil {
			b.Fatal(err)
		}
	}
}
