//go:build unix

package extract

import (
	"os"
	"strconv"
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// mmapMemory backs a PDFium instance's WebAssembly memory with one anonymous
// mapping of its maximum size: pages cost RAM only once PDFium touches them,
// growing never copies (a Go slice would hold the old and the new memory
// together, then leave both to the garbage collector), and Free returns the
// memory to the system at once.
type mmapMemory struct {
	buf    []byte
	mapped bool
}

func (m *mmapMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		return nil
	}
	return m.buf[:size:size]
}

func (m *mmapMemory) Free() {
	if m.mapped {
		_ = syscall.Munmap(m.buf)
	}
	m.buf, m.mapped = nil, false
}

var wasmMemory experimental.MemoryAllocator = experimental.MemoryAllocatorFunc(func(_, max uint64) experimental.LinearMemory {
	buf, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		buf = make([]byte, max) // untouched pages of a large allocation cost no RAM either
	}
	return &mmapMemory{buf: buf, mapped: err == nil}
})

// lowerPriority makes the PDF worker yield the processor to the server: a
// document read in the background may take longer, a request must not. On
// Linux a nice value belongs to each thread, and a new thread takes its
// creator's: so every thread there is now gets it.
func lowerPriority() {
	const nice = 10
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		_ = syscall.Setpriority(syscall.PRIO_PROCESS, 0, nice)
		return
	}
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice)
		}
	}
}
