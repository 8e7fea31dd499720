// Package filewatch tells whether a file changed since it was last read, by
// polling: size, modification time and identity (inode), so both an edit in
// place and an atomic rename (geoipupdate, curl -o tmp && mv) are seen.
package filewatch

import (
	"context"
	"os"
	"time"
)

// Stamp is what a poll remembers of a file.
type Stamp struct {
	fi os.FileInfo
}

// Stat stamps the file at path.
func Stat(path string) (Stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Stamp{}, err
	}
	return Stamp{fi}, nil
}

// Changed reports whether s differs from old (a zero Stamp differs from
// every file).
func (s Stamp) Changed(old Stamp) bool {
	if s.fi == nil || old.fi == nil {
		return s.fi != old.fi
	}
	return s.fi.Size() != old.fi.Size() || !s.fi.ModTime().Equal(old.fi.ModTime()) || !os.SameFile(s.fi, old.fi)
}

// ModTime is the file's modification time (zero for a zero Stamp).
func (s Stamp) ModTime() time.Time {
	if s.fi == nil {
		return time.Time{}
	}
	return s.fi.ModTime()
}

// Poll calls reload every interval until ctx is done; reload logs and
// counts its own failures. A non-positive interval disables polling.
func Poll(ctx context.Context, interval time.Duration, reload func() error) error {
	if interval <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			_ = reload()
		}
	}
}
