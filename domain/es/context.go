package es

import "context"

type metadataKey struct{}

// WithMetadata returns a context that carries the metadata of the request or
// event being handled, so that every event appended on its behalf records who
// caused it and why. The HTTP layer and consumers set it; command handlers read it.
func WithMetadata(ctx context.Context, m Metadata) context.Context {
	return context.WithValue(ctx, metadataKey{}, m)
}

// MetadataFrom returns the metadata carried by ctx (the zero value if none).
func MetadataFrom(ctx context.Context) Metadata {
	m, _ := ctx.Value(metadataKey{}).(Metadata)
	return m
}
