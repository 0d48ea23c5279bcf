// Package types defines pxq's column types, semantic types and relations
// (ordered, typed column lists), and how each maps onto Apache Arrow.
//
// Every other package speaks these types: the compiler type-checks with
// them, the planner carries them in plans, the executor and the table store
// lay data out in the Arrow types they map to.
package types

import (
	"fmt"
	"strings"

	"github.com/apache/arrow/go/v15/arrow"
)

// DataType is a column's value type. The numbering matches Pixie's
// px.api.vizierpb.DataType so that it can go on the wire unchanged.
type DataType int32

const (
	Unknown  DataType = 0
	Boolean  DataType = 1
	Int64    DataType = 2
	UInt128  DataType = 3
	Float64  DataType = 4
	String   DataType = 5
	Time64NS DataType = 6
)

var dataTypeNames = map[DataType]string{
	Unknown: "UNKNOWN", Boolean: "BOOLEAN", Int64: "INT64", UInt128: "UINT128",
	Float64: "FLOAT64", String: "STRING", Time64NS: "TIME64NS",
}

func (t DataType) String() string {
	if s, ok := dataTypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("DataType(%d)", int32(t))
}

// ParseDataType parses a name as printed by String (case-insensitive).
func ParseDataType(s string) (DataType, error) {
	for t, n := range dataTypeNames {
		if strings.EqualFold(n, s) {
			return t, nil
		}
	}
	return Unknown, fmt.Errorf("unknown data type %q", s)
}

// Numeric reports whether t is INT64, FLOAT64 or TIME64NS.
func (t DataType) Numeric() bool { return t == Int64 || t == Float64 || t == Time64NS }

// UInt128Type is the Arrow type of UINT128 columns: 16 bytes, the high word
// then the low word, each little-endian.
var UInt128Type = &arrow.FixedSizeBinaryType{ByteWidth: 16}

// TimeType is the Arrow type of TIME64NS columns.
var TimeType = &arrow.TimestampType{Unit: arrow.Nanosecond}

// Arrow returns the Arrow type that holds values of t.
func (t DataType) Arrow() arrow.DataType {
	switch t {
	case Boolean:
		return arrow.FixedWidthTypes.Boolean
	case Int64:
		return arrow.PrimitiveTypes.Int64
	case UInt128:
		return UInt128Type
	case Float64:
		return arrow.PrimitiveTypes.Float64
	case String:
		return arrow.BinaryTypes.String
	case Time64NS:
		return TimeType
	}
	panic(fmt.Sprintf("types: no Arrow type for %v", t))
}

// FromArrow maps an Arrow type back to a DataType.
func FromArrow(a arrow.DataType) (DataType, error) {
	switch a.ID() {
	case arrow.BOOL:
		return Boolean, nil
	case arrow.INT64, arrow.INT32, arrow.INT16, arrow.INT8, arrow.UINT32, arrow.UINT16, arrow.UINT8:
		return Int64, nil
	case arrow.FIXED_SIZE_BINARY:
		if a.(*arrow.FixedSizeBinaryType).ByteWidth == 16 {
			return UInt128, nil
		}
	case arrow.FLOAT64, arrow.FLOAT32:
		return Float64, nil
	case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY:
		return String, nil
	case arrow.TIMESTAMP:
		return Time64NS, nil
	}
	return Unknown, fmt.Errorf("unsupported Arrow type %v", a)
}

// UInt128Value is a 128-bit value, as UPIDs are.
type UInt128Value struct{ High, Low uint64 }

// UPID packs a process identity that survives pid reuse: the agent's short
// id and the pid in the high word, the process start time (ns since boot
// as /proc reports it, in clock ticks converted to ns) in the low word.
func UPID(asid uint32, pid uint32, startNS uint64) UInt128Value {
	return UInt128Value{High: uint64(asid)<<32 | uint64(pid), Low: startNS}
}

// ASID returns the agent short id of a UPID.
func (u UInt128Value) ASID() uint32 { return uint32(u.High >> 32) }

// PID returns the pid of a UPID.
func (u UInt128Value) PID() uint32 { return uint32(u.High) }

// StartNS returns the process start time of a UPID.
func (u UInt128Value) StartNS() uint64 { return u.Low }

// String formats a UPID as asid:pid:start, the form upid_to_string yields.
func (u UInt128Value) String() string {
	return fmt.Sprintf("%d:%d:%d", u.ASID(), u.PID(), u.StartNS())
}

// Bytes returns the 16-byte Arrow layout of u.
func (u UInt128Value) Bytes() []byte {
	var b [16]byte
	PutUInt128(b[:], u)
	return b[:]
}

// PutUInt128 writes u into b[0:16] in the Arrow layout.
func PutUInt128(b []byte, u UInt128Value) {
	_ = b[15]
	for i := 0; i < 8; i++ {
		b[i] = byte(u.High >> (8 * i))
		b[8+i] = byte(u.Low >> (8 * i))
	}
}

// GetUInt128 reads the Arrow layout written by PutUInt128.
func GetUInt128(b []byte) UInt128Value {
	_ = b[15]
	var u UInt128Value
	for i := 0; i < 8; i++ {
		u.High |= uint64(b[i]) << (8 * i)
		u.Low |= uint64(b[8+i]) << (8 * i)
	}
	return u
}
