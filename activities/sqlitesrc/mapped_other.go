//go:build !linux

package sqlitesrc

// mappedReads is off where pages already read cannot be released from the
// process: the map would grow the worker's memory by the database's size.
const mappedReads = false

const mmapLimit = 0

func releaseMapped(string, int64) {}
