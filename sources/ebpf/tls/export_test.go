package tls

// GoOffsetTable is the fd chain's layout used without DWARF.
func GoOffsetTable() GoOffsets { return goOffsetTable.off }
