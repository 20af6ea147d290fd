package embedded

// AvoidUserNamespaces makes the setpriv path testable where user namespaces work.
func AvoidUserNamespaces(b bool) { avoidUserNamespaces = b }
