package tls

import "debug/elf"

// GoOffsetTable is the fd chain's layout used without DWARF.
func GoOffsetTable() GoOffsets { return goOffsetTable.off }

// GoOffsetsFromDWARF reads the fd chain's layout from the DWARF of the
// executable at path.
func GoOffsetsFromDWARF(path string) (GoOffsets, error) {
	f, err := elf.Open(path)
	if err != nil {
		return GoOffsets{}, err
	}
	defer f.Close()
	d, err := f.DWARF()
	if err != nil {
		return GoOffsets{}, err
	}
	return dwarfOffsets(d)
}
