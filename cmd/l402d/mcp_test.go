package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMCPFlags(t *testing.T) {
	if m := parseConfig(t).MCP; m.Disable || m.ApprovalThresholdSats != DefaultMCPApprovalThresholdSats {
		t.Fatalf("defaults: %+v", m)
	}
	for _, tc := range []struct {
		args []string
		want int64
	}{
		{[]string{"--mcp.approval-threshold-sats", "0"}, 0},
		{[]string{"--mcp.approval-threshold-sats", "-1"}, -1},
		{[]string{"--mcp.approval-threshold-sats", "-50"}, -1},
		{[]string{"--mcp.approval-threshold-sats", "2500"}, 2500},
	} {
		if m := parseConfig(t, tc.args...).MCP; m.ApprovalThresholdSats != tc.want {
			t.Errorf("%v: threshold %d, want %d", tc.args, m.ApprovalThresholdSats, tc.want)
		}
	}

	yaml := filepath.Join(t.TempDir(), "l402d.yaml")
	if err := os.WriteFile(yaml, []byte("mcp.approval-threshold-sats: 77\nmcp.disable: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if m := parseConfig(t, "--config", yaml).MCP; !m.Disable || m.ApprovalThresholdSats != 77 {
		t.Fatalf("config file: %+v", m)
	}

	t.Setenv("L402D_MCP_APPROVAL_THRESHOLD_SATS", "123")
	t.Setenv("L402D_MCP_DISABLE", "true")
	if m := parseConfig(t).MCP; !m.Disable || m.ApprovalThresholdSats != 123 {
		t.Fatalf("env: %+v", m)
	}
}
