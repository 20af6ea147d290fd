package embedded

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// binaries is a PostgreSQL installation on this machine.
type binaries struct {
	dir   string // holds initdb, pg_ctl and postgres
	major string // "15"
}

// systemBinaries lets tests play a machine without PostgreSQL.
var systemBinaries = true

// errNoBinaries: the machine has no PostgreSQL server binaries.
var errNoBinaries = errors.New("embedded postgres: no PostgreSQL binaries found (looked in /usr/lib/postgresql/*/bin, pg_config --bindir and PATH)")

// findBinaries looks where Debian and Ubuntu put PostgreSQL
// (/usr/lib/postgresql/N/bin, the newest first), then asks pg_config, then
// PATH, then in downloaded, where download puts the binaries it fetched.
func findBinaries(downloaded string) (binaries, error) {
	var dirs []string
	if !systemBinaries {
		dirs = append(dirs, downloaded)
		return pickBinaries(dirs)
	}
	if found, _ := filepath.Glob("/usr/lib/postgresql/*/bin"); len(found) > 0 {
		sort.Slice(found, func(i, j int) bool { return versionOf(found[i]) > versionOf(found[j]) })
		dirs = append(dirs, found...)
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	return pickBinaries(append(dirs, downloaded))
}

func pickBinaries(dirs []string) (binaries, error) {
	for _, d := range dirs {
		if !executable(filepath.Join(d, "initdb")) || !executable(filepath.Join(d, "pg_ctl")) || !executable(filepath.Join(d, "postgres")) {
			continue
		}
		out, err := exec.Command(filepath.Join(d, "pg_ctl"), "--version").Output()
		if err != nil {
			continue
		}
		m := regexp.MustCompile(`\(PostgreSQL\) (\d+)`).FindSubmatch(out)
		if m == nil {
			continue
		}
		return binaries{dir: d, major: string(m[1])}, nil
	}
	return binaries{}, errNoBinaries
}

func versionOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// runner says how the PostgreSQL binaries are run. PostgreSQL refuses to run
// as root, so as root they run as an unprivileged user, in one of two ways:
//
//   - in a user namespace that maps us (root outside) to nobody inside: the
//     files stay ours and any path we can reach works, nothing is chowned;
//   - where user namespaces are not allowed (some containers), with setpriv
//     as the postgres (or nobody) user, which then owns DataDir/postgres.
type runner struct {
	prefix []string // command words put before the binary
	chown  string   // "uid:gid" that must own the pwfile initdb reads, or ""
	desc   string
}

// avoidUserNamespaces lets tests take the setpriv path on machines that
// allow user namespaces.
var avoidUserNamespaces = false

func (r runner) describe() string { return r.desc }

func chooseRunner(dir, pgDir string) (runner, error) {
	if os.Geteuid() != 0 {
		return runner{desc: "as the current user"}, nil
	}
	uid, gid := lookupUser("nobody", 65534)
	ns := []string{"unshare", "--user", "--map-user=" + strconv.Itoa(uid), "--map-group=" + strconv.Itoa(gid), "--"}
	if err := exec.Command(ns[0], append(ns[1:], "true")...).Run(); err == nil && !avoidUserNamespaces {
		return runner{prefix: ns, desc: "as root, through a user namespace as nobody"}, nil
	}

	name := "postgres"
	if _, err := user.Lookup(name); err != nil {
		name = "nobody"
	}
	uid, gid = lookupUser(name, 65534)
	as := []string{"setpriv", "--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(gid), "--clear-groups", "--"}
	if err := chownTree(pgDir, uid, gid); err != nil {
		return runner{}, err
	}
	// The user must be able to pass through dir to reach pgDir.
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o001 == 0 {
		if err := os.Chmod(dir, fi.Mode().Perm()|0o011); err != nil {
			return runner{}, fmt.Errorf("embedded postgres: %w", err)
		}
	}
	if out, err := exec.Command(as[0], append(as[1:], "test", "-w", pgDir)...).CombinedOutput(); err != nil {
		return runner{}, fmt.Errorf("embedded postgres: running as root, PostgreSQL must run as the unprivileged user %q, "+
			"which cannot write %s (a parent directory is not searchable by it?); choose another COMPANIN_DATA_DIR, "+
			"run as a non-root user, or set DATABASE_URL: %v %s", name, pgDir, err, out)
	}
	return runner{prefix: as, chown: fmt.Sprintf("%d:%d", uid, gid), desc: "as root, through setpriv as " + name}, nil
}

func lookupUser(name string, fallback int) (uid, gid int) {
	u, err := user.Lookup(name)
	if err != nil {
		return fallback, fallback
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// chownTree gives pgDir to uid:gid, walking the tree only when its top is
// not already theirs (a cluster made in the other mode).
func chownTree(pgDir string, uid, gid int) error {
	fi, err := os.Stat(pgDir)
	if err != nil {
		return fmt.Errorf("embedded postgres: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid && int(st.Gid) == gid {
		return nil
	}
	err = filepath.WalkDir(pgDir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("embedded postgres: chown %s: %w", pgDir, err)
	}
	return nil
}

// writeWrappers writes dir/bin/pg_ctl and dir/bin/initdb, the two programs
// the library runs, so that they run the machine's binaries through r and
// the server logs to logFile.
func writeWrappers(dir string, b binaries, r runner, logFile string, ephemeral bool) error {
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return fmt.Errorf("embedded postgres: %w", err)
	}
	prefix := ""
	for _, w := range r.prefix {
		prefix += quote(w) + " "
	}
	header := "#!/bin/sh\n# Generated by companin (adapters/postgres/embedded) at every start; do not edit.\ncd / || exit 1\n"
	pgCtl := header +
		"if [ \"$1\" = start ]; then set -- \"$@\" -l " + quote(logFile) + "; fi\n" +
		"exec " + prefix + quote(filepath.Join(b.dir, "pg_ctl")) + " \"$@\"\n"
	initdb := header
	if ephemeral { // nothing to keep: skip initdb's final fsync of every file
		initdb += "set -- \"$@\" --no-sync\n"
	}
	if r.chown != "" {
		initdb += "for a; do case \"$a\" in --pwfile=*) chown " + r.chown + " \"${a#--pwfile=}\" ;; esac; done\n"
	}
	initdb += "exec " + prefix + quote(filepath.Join(b.dir, "initdb")) + " \"$@\"\n"
	for name, body := range map[string]string{"pg_ctl": pgCtl, "initdb": initdb} {
		p := filepath.Join(bin, name)
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o755); err != nil {
			return fmt.Errorf("embedded postgres: %w", err)
		}
		if err := os.Rename(tmp, p); err != nil {
			return fmt.Errorf("embedded postgres: %w", err)
		}
	}
	return nil
}

// quote makes s one shell word.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
