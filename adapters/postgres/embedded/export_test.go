package embedded

// AvoidUserNamespaces makes the setpriv path testable where user namespaces work.
func AvoidUserNamespaces(b bool) { avoidUserNamespaces = b }

// WithoutSystemBinaries plays a machine without PostgreSQL installed.
func WithoutSystemBinaries(t interface{ Cleanup(func()) }) {
	systemBinaries = false
	t.Cleanup(func() { systemBinaries = true })
}
