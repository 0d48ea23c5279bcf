package pgsql

import (
	"encoding/binary"
	"testing"
)

func TestNumeric(t *testing.T) {
	num := func(weight, sign, scale int, digits ...int) []byte {
		v := binary.BigEndian.AppendUint16(nil, uint16(len(digits)))
		v = binary.BigEndian.AppendUint16(v, uint16(int16(weight)))
		v = binary.BigEndian.AppendUint16(v, uint16(sign))
		v = binary.BigEndian.AppendUint16(v, uint16(scale))
		for _, d := range digits {
			v = binary.BigEndian.AppendUint16(v, uint16(d))
		}
		return v
	}
	for _, c := range []struct {
		v    []byte
		want string
	}{
		{num(0, 0, 1, 2, 5000), "2.5"},
		{num(0, 0, 0, 1), "1"},
		{num(0, 0, 0), "0"},
		{num(1, 0, 2, 12, 3456, 7800), "123456.78"},
		{num(2, 0, 0, 1), "100000000"},
		{num(-1, 0, 6, 12), "0.001200"},
		{num(-2, 0x4000, 8, 5), "-0.00000005"},
		{num(0, 0xC000, 0), "NaN"},
		{num(0, 0xD000, 0), "Infinity"},
		{num(0, 0xF000, 0), "-Infinity"},
		{num(0, 0, 3, 7), "7.000"},
		{append(num(0, 0, 0, 1), 0), `\x0001000000000000000100`}, // a byte too many
	} {
		if got := string(appendValue(nil, c.v, false, 1, oidNumeric)); got != c.want {
			t.Errorf("%x: %q, want %q", c.v, got, c.want)
		}
	}
}
