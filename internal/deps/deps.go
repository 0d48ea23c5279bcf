package main
import (
 _ "github.com/apache/arrow/go/v15/arrow"
 _ "github.com/apache/arrow/go/v15/parquet/pqarrow"
 _ "go.starlark.net/starlark"
 _ "github.com/cilium/ebpf"
 _ "google.golang.org/grpc"
 _ "google.golang.org/protobuf/proto"
)
func main(){}
