// Command otlpdesc writes the protobuf descriptor set of the OTLP trace protos
// (opentelemetry/proto/trace/v1/trace.proto and its imports) to a file.
//
// No registry ships the OTLP .proto sources, yet jaeger-idl's
// proto/storage/v2/trace_storage.proto imports trace.proto. protoc accepts the
// compiled descriptors instead (--descriptor_set_in), which we take from the
// go.opentelemetry.io/proto/otlp package the project already depends on, so the
// generated stubs always match the OTLP Go types they import.
//
// Usage: go run ./tools/otlpdesc <out.binpb>
package main

import (
	"fmt"
	"os"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: otlpdesc <out.binpb>")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "otlpdesc:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	b, err := proto.Marshal(descriptorSet(tracepb.File_opentelemetry_proto_trace_v1_trace_proto))
	if err != nil {
		return fmt.Errorf("marshal descriptor set: %w", err)
	}
	return os.WriteFile(out, b, 0o644)
}

// descriptorSet returns fd and its transitive imports, dependencies first, as
// protoc requires for --descriptor_set_in.
func descriptorSet(fd protoreflect.FileDescriptor) *descriptorpb.FileDescriptorSet {
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := range imports.Len() {
			add(imports.Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	add(fd)
	return set
}
