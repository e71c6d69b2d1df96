package main

import (
	"testing"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/proto"
)

func roundTrip(t *testing.T, req *pulumirpc.RunPluginRequest) (*pulumirpc.RunPluginRequest, error) {
	t.Helper()
	data, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	msg := &frame{data: data}
	if err := rewriteRunPlugin(msg); err != nil {
		return nil, err
	}
	var out pulumirpc.RunPluginRequest
	if err := proto.Unmarshal(msg.data, &out); err != nil {
		t.Fatal(err)
	}
	return &out, nil
}

func TestRunPluginGetsProgramFromInfo(t *testing.T) {
	// What the v3.260.0 CLI sends for `--policy-pack policy` (resource/plugin/plugin.go).
	in := &pulumirpc.RunPluginRequest{
		Pwd:  "/proj",
		Args: []string{"127.0.0.1:1234"},
		Env:  []string{"A=1"},
		Info: &pulumirpc.ProgramInfo{RootDirectory: "/proj/policy", ProgramDirectory: "/proj/policy", EntryPoint: "."},
		Kind: "analyzer",
	}
	out, err := roundTrip(t, in)
	if err != nil {
		t.Fatal(err)
	}
	want := proto.Clone(in).(*pulumirpc.RunPluginRequest)
	want.Program = "/proj/policy"
	want.Env = []string{"A=1", "PYTHONUNBUFFERED=1"} // the port line must reach the CLI through a pipe
	if !proto.Equal(out, want) {
		t.Fatalf("got %v, want %v", out, want)
	}
}

func TestRunPluginLeftAloneWithProgramOrWithoutInfo(t *testing.T) {
	for _, in := range []*pulumirpc.RunPluginRequest{
		{Pwd: "/proj/policy", Program: "/proj/policy", Info: &pulumirpc.ProgramInfo{ProgramDirectory: "/elsewhere"}},
		{Pwd: "/proj", Program: "./pack"},
	} {
		out, err := roundTrip(t, in)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(out, in) {
			t.Fatalf("got %v, want it unchanged: %v", out, in)
		}
	}
}

func TestRunPluginRelativeProgramDirectoryRefused(t *testing.T) {
	in := &pulumirpc.RunPluginRequest{Pwd: "/proj", Info: &pulumirpc.ProgramInfo{ProgramDirectory: "policy"}}
	_, err := roundTrip(t, in)
	if err == nil {
		t.Fatal("want an error for a relative program directory")
	}
}
