package mdcode

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestSectionLines(t *testing.T) {
	doc := "# Top\n\n## Quick\n\ntext\n\n```\n# a comment\nmake run \\\n  --x\n\nflowguard y\n```\n\n### Sub\n\n```\nnc -l 1\nsome output\n```\n\n## Next\n\n```\nflowguard z\n```\n"
	path := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := SectionLines(path, "Quick")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"make run   --x", "flowguard y", "nc -l 1", "some output"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SectionLines = %q, want %q", got, want)
	}
	cmds, _ := Commands(path, "Quick", "flowguard ")
	if !reflect.DeepEqual(cmds, []string{"flowguard y"}) {
		t.Errorf("Commands = %q", cmds)
	}
	sub, _ := SectionLines(path, "Sub")
	if !reflect.DeepEqual(sub, []string{"nc -l 1", "some output"}) {
		t.Errorf("a ### section ends at the next ##: %q", sub)
	}
	if _, err := SectionLines(path, "Missing"); err == nil {
		t.Error("no error for a missing heading")
	}
}
