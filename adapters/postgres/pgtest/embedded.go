package pgtest

import "errors"

// startEmbedded starts a PostgreSQL server for this test binary when
// DATABASE_URL is unset. (To be replaced by the embedded server shared with
// `companin serve`.)
func startEmbedded() (string, error) {
	return "", errors.New("DATABASE_URL is unset and the embedded server is not wired yet")
}
