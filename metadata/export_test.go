package metadata

// WriteJSON is writeJSON, for the external tests.
var WriteJSON = writeJSON
