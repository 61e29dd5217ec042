package bench

import (
	"context"
	"os"
	"testing"
)

func TestTmpCompare(t *testing.T) {
	if os.Getenv("TMPCMP") == "" {
		t.Skip()
	}
	ss, err := Library("../scenarios", nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Compare(context.Background(), ss, Policies, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep.WriteTable(os.Stdout)
}
