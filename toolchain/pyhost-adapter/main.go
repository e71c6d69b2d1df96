// pulumi-language-python as the CLI sees it: a protocol adapter in front of the STOPGAP Python language host
// (README.md, ../pyhost), not a language host of its own.
//
// Why: the stopgap host is the one of sdk/v3 v3.79.0, because the host of our pulumi pin (the nested module
// github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3) is refused by our Go module proxy. Since then
// the CLI stopped filling RunPluginRequest.program: the v3.260.0 CLI runs a Python policy pack (and any other Python
// plugin) through RunPlugin with `info` (a ProgramInfo whose program directory is the plugin's directory, entry
// point ".") and `pwd` = the project directory (pkg/v3 resource/plugin/plugin.go and langruntime_plugin.go). The
// 3.79 host runs `python <program> <args>` in `pwd`; with `program` empty that is `python ""` in the project
// directory, which runs the project's own __main__.py instead of the pack, and the pack "fails to start".
//
// What: this binary starts the stopgap host, installed next to it as pulumi-language-python-stopgap, with our own
// arguments, environment and working directory; reads the port it prints; serves gRPC on a port of its own (printed
// the same way); and forwards every call to the stopgap byte for byte (any service, unary or streaming; headers,
// trailers and status codes such as Unimplemented pass through). The one change: a RunPlugin request that carries
// `info` but no `program` gets `program` = the absolute program directory from `info`, which is what the newer host
// runs (`python <program directory> <args>` in `pwd`, so the directory's __main__.py). Everything else the stopgap
// lacks stays lacking; notably it still ignores the `virtualenv` runtime option, for the plugin too: the pack runs
// with PULUMI_PYTHON_CMD (or python3 on PATH), so that Python needs pulumi-policy.
//
// DELETE this module when the real host becomes buildable: build the host of the pulumi pin as
// pulumi-language-python again, and drop ../pyhost and the -stopgap install from ../build.sh.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// stopgapName is the stopgap host's file name; it must sit next to this binary (it looks for
// pulumi-language-python-exec next to itself, so the same folder serves both).
const stopgapName = "pulumi-language-python-stopgap"

// runPluginMethod is the only call whose request is decoded and rewritten.
const runPluginMethod = "/pulumirpc.LanguageRuntime/RunPlugin"

// maxMessageSize matches the limit pulumi sets on its own servers and clients (sdk/v3 go/common/util/rpcutil).
const maxMessageSize = 400 * 1024 * 1024

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python (adapter for the %s host): %v\n", stopgapName, err)
		os.Exit(1)
	}
}

func run() error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locating this executable: %w", err)
	}
	host := exec.Command(filepath.Join(filepath.Dir(self), stopgapName), os.Args[1:]...)
	host.Stdin, host.Stderr = os.Stdin, os.Stderr
	hostOut, err := host.StdoutPipe()
	if err != nil {
		return err
	}
	if err := host.Start(); err != nil {
		return fmt.Errorf("starting the stopgap host: %w", err)
	}
	exited := make(chan error, 1)
	stdoutDone := make(chan struct{})

	// The host's first line of stdout is its port, as for every plugin.
	out := bufio.NewReader(hostOut)
	line, readErr := out.ReadString('\n')
	port, convErr := strconv.Atoi(strings.TrimSpace(line))
	if readErr != nil || convErr != nil {
		os.Stdout.WriteString(line) // whatever it printed, for the CLI to show
		waitErr := host.Wait()
		return fmt.Errorf("the stopgap host printed no port (%q): %w", line, errors.Join(readErr, convErr, waitErr))
	}

	conn, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(port),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageSize), grpc.MaxCallSendMsgSize(maxMessageSize)))
	if err != nil {
		_ = host.Process.Kill()
		return fmt.Errorf("dialling the stopgap host: %w", err)
	}
	defer conn.Close()

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = host.Process.Kill()
		return err
	}
	srv := grpc.NewServer(
		grpc.ForceServerCodec(rawCodec{}),
		grpc.UnknownServiceHandler(forwarder{conn}.forward),
		grpc.MaxRecvMsgSize(maxMessageSize),
	)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()

	fmt.Printf("%d\n", lis.Addr().(*net.TCPAddr).Port)
	// Anything else the host writes to stdout follows our port.
	go func() { _, _ = io.Copy(os.Stdout, out); close(stdoutDone) }()
	go func() { <-stdoutDone; exited <- host.Wait() }()

	// We live as long as the host. The CLI stops plugins with SIGINT (then SIGKILL) to the process group,
	// which holds the host too; pass signals on anyway, in case we were started in another way.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	interrupted := false
	for {
		select {
		case sig := <-signals:
			interrupted = true
			_ = host.Process.Signal(sig)
		case err := <-served:
			_ = host.Process.Kill()
			<-exited
			return fmt.Errorf("serving: %w", err)
		case err := <-exited:
			srv.Stop()
			var exitErr *exec.ExitError
			switch {
			case err == nil || interrupted:
				return nil
			case errors.As(err, &exitErr) && exitErr.ExitCode() > 0:
				os.Exit(exitErr.ExitCode()) // the host said why on stderr
			}
			return fmt.Errorf("the stopgap host: %w", err)
		}
	}
}

// forwarder relays any call to the stopgap host over one client connection.
type forwarder struct{ conn *grpc.ClientConn }

func (f forwarder) forward(_ any, in grpc.ServerStream) error {
	method, ok := grpc.MethodFromServerStream(in)
	if !ok {
		return status.Error(codes.Internal, "no method name on the incoming stream")
	}
	md, _ := metadata.FromIncomingContext(in.Context())
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(in.Context(), md.Copy()))
	defer cancel()
	out, err := f.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method,
		grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return err
	}

	// Requests: CLI -> host. A send error means the host ended the call; its status arrives below.
	rewriteErr := make(chan error, 1)
	go func() {
		for {
			msg := new(frame)
			if err := in.RecvMsg(msg); err != nil {
				if errors.Is(err, io.EOF) {
					_ = out.CloseSend()
				} else {
					cancel()
				}
				return
			}
			if method == runPluginMethod {
				if err := rewriteRunPlugin(msg); err != nil {
					rewriteErr <- status.Error(codes.InvalidArgument, err.Error())
					cancel()
					return
				}
			}
			if err := out.SendMsg(msg); err != nil {
				return
			}
		}
	}()

	// Responses: host -> CLI, then the host's trailers and status.
	for first := true; ; first = false {
		msg := new(frame)
		err := out.RecvMsg(msg)
		if first {
			if header, herr := out.Header(); herr == nil && len(header) > 0 {
				if err == nil {
					_ = in.SendHeader(header)
				} else {
					_ = in.SetHeader(header)
				}
			}
		}
		if err != nil {
			select {
			case rerr := <-rewriteErr:
				return rerr
			default:
			}
			in.SetTrailer(out.Trailer())
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err // a status from the host (codes, message, details) passes through as is
		}
		if err := in.SendMsg(msg); err != nil {
			return err
		}
	}
}

// rewriteRunPlugin fills RunPluginRequest.program from info.program_directory when the CLI left it empty. The real
// host of our pin runs `python <program directory> <args>` in pwd (ignoring the entry point); the stopgap runs
// `python <program> <args>` in pwd, so this makes both run the same thing. pwd stays the CLI's.
func rewriteRunPlugin(msg *frame) error {
	var req pulumirpc.RunPluginRequest
	if err := proto.Unmarshal(msg.data, &req); err != nil {
		return fmt.Errorf("decoding RunPluginRequest: %w", err)
	}
	dir := req.GetInfo().GetProgramDirectory()
	if req.GetProgram() != "" || dir == "" {
		return nil
	}
	if !filepath.IsAbs(dir) { // the CLI sends an absolute path (ProgramInfo requires it); don't guess a base
		return fmt.Errorf("RunPluginRequest: program directory %q is not absolute", dir)
	}
	req.Program = dir
	// The plugin announces its port on stdout and the CLI waits for that line; the stopgap runs `python` without -u,
	// so with stdout a pipe the port would sit in Python's buffer and the CLI wait forever (seen with the policy pack
	// whenever PYTHONUNBUFFERED was not already set by the caller's environment).
	req.Env = append(req.Env, "PYTHONUNBUFFERED=1")
	data, err := proto.Marshal(&req)
	if err != nil {
		return fmt.Errorf("encoding RunPluginRequest: %w", err)
	}
	msg.data = data
	return nil
}

// frame is one gRPC message, undecoded.
type frame struct{ data []byte }

// rawCodec moves frames without decoding them. Its name is "proto" so the content type it puts on outgoing calls
// is the one the host already understands.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	f, ok := v.(*frame)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return f.data, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	f, ok := v.(*frame)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	f.data = append([]byte(nil), data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }
