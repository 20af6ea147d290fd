//go:build !unix

package extract

import "github.com/tetratelabs/wazero/experimental"

// wasmMemory is wazero's own (a growing Go slice) where mmap is not at hand.
var wasmMemory experimental.MemoryAllocator

func lowerPriority() {}
